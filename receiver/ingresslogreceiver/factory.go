package ingresslogreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/sharedcomponent"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/metadata"
)

// NewFactory returns the factory of the ingress_log receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

// One receiver per configuration serves both the logs and the metrics
// pipeline, so that each file is read once.
var shared sharedcomponent.Registry[*Config, *ingressReceiver]

func sharedReceiver(set receiver.Settings, cfg *Config) (*ingressReceiver, error) {
	return shared.Get(cfg, func(forget func()) (*ingressReceiver, error) {
		r, err := newIngressReceiver(set, cfg)
		if err != nil {
			return nil, err
		}
		r.forget = forget
		return r, nil
	})
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.nextLogs = next
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := sharedReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.nextMetrics = next
	return r, nil
}
