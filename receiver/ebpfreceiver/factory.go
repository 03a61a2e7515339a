package ebpfreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/sharedcomponent"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadata"
)

// NewFactory returns the factory of the ebpf receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability),
		receiver.WithMetrics(createMetricsReceiver, metadata.MetricsStability),
	)
}

// One receiver per configuration serves both the logs pipeline (the events) and
// the metrics pipeline (their counts): the BPF programs are loaded once.
var shared sharedcomponent.Registry[*Config, *ebpfReceiver]

func sharedReceiver(set receiver.Settings, cfg *Config) (*ebpfReceiver, error) {
	return shared.Get(cfg, func(forget func()) (*ebpfReceiver, error) {
		r, err := newEBPFReceiver(set, cfg, nil)
		if err != nil {
			return nil, err
		}
		r.forget = forget
		return r, nil
	})
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.next = next
	return r, nil
}

func createMetricsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.nextMetrics = next
	return r, nil
}
