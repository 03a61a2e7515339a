package ingresslogreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

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
var shared = struct {
	sync.Mutex
	m map[*Config]*ingressReceiver
}{m: map[*Config]*ingressReceiver{}}

func sharedReceiver(set receiver.Settings, cfg *Config) (*ingressReceiver, error) {
	shared.Lock()
	defer shared.Unlock()
	if r, ok := shared.m[cfg]; ok {
		return r, nil
	}
	r, err := newIngressReceiver(set, cfg)
	if err != nil {
		return nil, err
	}
	r.forget = func() {
		shared.Lock()
		delete(shared.m, cfg)
		shared.Unlock()
	}
	shared.m[cfg] = r
	return r, nil
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
