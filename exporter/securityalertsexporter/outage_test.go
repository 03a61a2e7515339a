package securityalertsexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/alertmanagertest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"
)

// queuedConfig is what a deployment runs: a sending queue (in memory, or on
// file_storage when storage is set) and retries that never give up.
func queuedConfig(endpoint string, storage *component.ID) *Config {
	cfg := testConfig(FormatAlertmanager, endpoint)
	q := exporterhelper.NewDefaultQueueConfig()
	q.StorageID = storage
	cfg.QueueConfig = configoptional.Some(q)
	cfg.RetryConfig.InitialInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 200 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 0 // until the destination is back
	return cfg
}

// burst is n alerts of distinct rules, so that each is its own Alertmanager alert.
func burst(prefix string, n int) (plog.Logs, []string) {
	ld := plog.NewLogs()
	var names []string
	for i := range n {
		s := execAlert(fmt.Sprintf("%s-%d", prefix, i))
		s.rule = fmt.Sprintf("Outage rule %s-%d", prefix, i)
		appendAlert(ld, s)
		names = append(names, s.rule)
	}
	return ld, names
}

// hasAll reports whether Alertmanager holds an alert for every name.
func hasAll(names []string) func([]alertmanagertest.Alert) bool {
	return func(as []alertmanagertest.Alert) bool {
		seen := map[string]bool{}
		for _, a := range as {
			seen[a.Labels["alertname"]] = true
		}
		for _, n := range names {
			if !seen[n] {
				return false
			}
		}
		return true
	}
}

func startExporter(t *testing.T, cfg *Config, host component.Host) exporter.Logs {
	t.Helper()
	require.NoError(t, cfg.Validate())
	f := NewFactory()
	set := exportertest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type()) // the same queue across restarts: its key holds the ID
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	exp, err := f.CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), host))
	return exp
}

// TestAlertmanagerOutage kills Alertmanager with SIGKILL while alerts flow,
// raises more while it is down, and starts it again on the same port: every
// alert raised during the outage arrives.
func TestAlertmanagerOutage(t *testing.T) {
	am := alertmanagertest.Start(t)
	exp := startExporter(t, queuedConfig(am.URL(), nil), componenttest.NewNopHost())
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	ctx := context.Background()

	before, beforeNames := burst("before", 3)
	require.NoError(t, exp.ConsumeLogs(ctx, before))
	am.WaitAlerts(15*time.Second, hasAll(beforeNames))

	am.Kill()
	during, duringNames := burst("during", 5)
	require.NoError(t, exp.ConsumeLogs(ctx, during), "the queue takes alerts while Alertmanager is down")
	time.Sleep(500 * time.Millisecond) // let the exporter fail and retry against the dead port
	am.Start()
	am.WaitAlerts(30*time.Second, hasAll(duringNames))

	after, afterNames := burst("after", 2)
	require.NoError(t, exp.ConsumeLogs(ctx, after))
	am.WaitAlerts(15*time.Second, hasAll(afterNames))
}

// TestAlertmanagerOutageWithCollectorRestart queues on file_storage and
// restarts the exporter (as a collector restart does) while Alertmanager is
// down: what was queued before the restart is delivered after it.
func TestAlertmanagerOutageWithCollectorRestart(t *testing.T) {
	am := alertmanagertest.Start(t)
	dir := t.TempDir()
	ctx := context.Background()
	cfg := queuedConfig(am.URL(), &storagetest.ID)

	storage := storagetest.Start(t, dir)
	exp := startExporter(t, cfg, storagetest.Host(componenttest.NewNopHost(), storage))
	before, beforeNames := burst("before", 2)
	require.NoError(t, exp.ConsumeLogs(ctx, before))
	am.WaitAlerts(15*time.Second, hasAll(beforeNames))

	am.Kill()
	during, duringNames := burst("during", 4)
	require.NoError(t, exp.ConsumeLogs(ctx, during))
	time.Sleep(300 * time.Millisecond) // the batch is being retried when the collector stops
	require.NoError(t, exp.Shutdown(ctx))
	require.NoError(t, storage.Shutdown(ctx))

	// The collector comes back first, Alertmanager after it.
	storage = storagetest.Start(t, dir)
	t.Cleanup(func() { require.NoError(t, storage.Shutdown(ctx)) })
	exp = startExporter(t, cfg, storagetest.Host(componenttest.NewNopHost(), storage))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(ctx)) })
	time.Sleep(300 * time.Millisecond)
	am.Start()
	am.WaitAlerts(30*time.Second, hasAll(duringNames))
}
