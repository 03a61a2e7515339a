package securityrulesprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadatatest"
)

// notFound sends one 404 from client to p, logged by the ingress pod pod.
func notFound(t *testing.T, p processor.Logs, pod, client string, ts time.Time) {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "ingress-nginx")
	rl.Resource().Attributes().PutStr("k8s.pod.name", pod)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("http.access")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	lr.Attributes().PutInt("http.response.status_code", 404)
	lr.Attributes().PutStr("client.address", client)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
}

// summaries returns the throttle summaries that reached sink, each with its
// resource's attributes.
func summaries(sink *consumertest.LogsSink) (out []plog.LogRecord, resources []map[string]any) {
	for _, ld := range sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if v, ok := lr.Attributes().Get("security_rule.throttled"); ok && v.Bool() {
						out = append(out, lr)
						resources = append(resources, rl.Resource().Attributes().AsRaw())
					}
				}
			}
		}
	}
	return out, resources
}

// A throttle summary is about the events it stands for: it carries their
// resource (the pod that logged them), whether the flush sends it or the
// next match after the period does.
func TestThrottleSummaryCarriesResource(t *testing.T) {
	cfg := testCfg(ModeAlerts, "testdata/rules.yaml")
	cfg.FlushInterval = 20 * time.Millisecond
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)

	// Flushed: the period (50ms) ends with nothing after it.
	t0 := time.Now()
	for range 3 {
		notFound(t, p, "ingress-a", "198.51.100.7", t0)
	}
	require.Eventually(t, func() bool { s, _ := summaries(sink); return len(s) == 1 }, 5*time.Second, 10*time.Millisecond)

	// Sent by the next match: its event's time is past the period, before
	// any flush could see the period end.
	cfg.FlushInterval = time.Hour
	sink2 := new(consumertest.LogsSink)
	p2 := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink2)
	notFound(t, p2, "ingress-b", "198.51.100.8", t0)
	notFound(t, p2, "ingress-b", "198.51.100.8", t0)
	notFound(t, p2, "ingress-c", "198.51.100.8", t0.Add(time.Second))

	for _, c := range []struct {
		sink *consumertest.LogsSink
		pod  string
	}{{sink, "ingress-a"}, {sink2, "ingress-b"}} {
		s, res := summaries(c.sink)
		require.Len(t, s, 1, c.pod)
		assert.Equal(t, map[string]any{"k8s.namespace.name": "ingress-nginx", "k8s.pod.name": c.pod}, res[0], c.pod)
	}
}

// A rule reload starts the rules' state afresh: what the old rules throttled
// is sent as summaries then, not lost with their state.
func TestReloadSendsPendingSummaries(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(output string) {
		require.NoError(t, os.WriteFile(file, []byte(`
- rule: Not found
  events: [http.access]
  condition: http.response.status_code == 404
  throttle: {by: [client.address], period: 1h}
  severity: low
  output: `+output+"\n"), 0o600))
	}
	write("404 from %{client.address}")
	cfg := testCfg(ModeAlerts, file)
	cfg.ReloadInterval = 10 * time.Millisecond
	cfg.FlushInterval = time.Hour
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, tt, cfg, sink)
	t0 := time.Now()
	for range 3 {
		notFound(t, p, "ingress-a", "198.51.100.7", t0)
	}

	write("a 404 from %{client.address}")
	require.Eventually(t, func() bool {
		m, err := tt.GetMetric("otelcol_processor_security_rules_reloads")
		return err == nil && len(m.Data.(metricdata.Sum[int64]).DataPoints) == 1
	}, 5*time.Second, 10*time.Millisecond, "the rules reload")
	s, res := summaries(sink)
	require.Len(t, s, 1, "the summary of the old rules' period")
	assert.Equal(t, int64(2), attr(s[0], "security_rule.count"))
	assert.Equal(t, "198.51.100.7", attr(s[0], "client.address"))
	assert.Equal(t, "ingress-a", res[0]["k8s.pod.name"])

	sink.Reset()
	notFound(t, p, "ingress-a", "198.51.100.7", t0)
	_, alerts := records(sink)
	require.Len(t, alerts, 1, "the new rules start a period of their own")
	assert.Equal(t, "a 404 from 198.51.100.7", alerts[0].Body().Str())
}

// Shutdown sends what is still throttled (the collector stops processors
// before their exporters), except in annotate mode, which sends no alerts;
// a second Shutdown does nothing.
func TestShutdownSendsPendingSummaries(t *testing.T) {
	for _, mode := range []string{ModeAlerts, ModeAnnotate} {
		t.Run(mode, func(t *testing.T) {
			cfg := testCfg(mode, "testdata/rules.yaml")
			cfg.FlushInterval = time.Hour
			require.NoError(t, cfg.Validate())
			sink := new(consumertest.LogsSink)
			p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg, sink)
			require.NoError(t, err)
			require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
			t0 := time.Now()
			for range 4 {
				notFound(t, p, "ingress-a", "198.51.100.7", t0)
			}
			require.NoError(t, p.Shutdown(context.Background()))
			s, res := summaries(sink)
			if mode == ModeAnnotate {
				_, alerts := records(sink)
				assert.Empty(t, alerts)
			} else {
				require.Len(t, s, 1)
				assert.Equal(t, int64(3), attr(s[0], "security_rule.count"))
				assert.Equal(t, "ingress-a", res[0]["k8s.pod.name"])
			}
			assert.NotPanics(t, func() { assert.NoError(t, p.Shutdown(context.Background())) })
		})
	}
}
