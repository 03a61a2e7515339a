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
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/configtest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadata"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadatatest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	return configtest.Load[*Config](t, NewFactory(), name)
}

func TestConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, ModeBoth, cfg.Mode)
	assert.Equal(t, 10000, cfg.State.MaxKeys)
	assert.Equal(t, 10*time.Second, cfg.ReloadInterval)
	assert.Equal(t, 10*time.Second, cfg.ReorderWindow, "covers the apiserver's audit batching")
	assert.Equal(t, 100000, cfg.State.MaxHeldEvents)
	assert.Equal(t, ResponseDryRun, cfg.Response.Mode, "kills nothing unless enforce is chosen")
	assert.Equal(t, TierAll, cfg.Tier)

	cfg, err = loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, &Config{Rules: []string{"testdata/rules.yaml"}, Mode: ModeAlerts, State: StateConfig{MaxKeys: 500, MaxHeldEvents: 2000},
		ReorderWindow: 4 * time.Second, CostLimit: 5000, FlushInterval: time.Minute, Response: ResponseConfig{Mode: ResponseEnforce},
		Tier: TierRules, StrictAttributes: true}, cfg)
	cfg, err = loadConfig(t, "annotate_kill_off")
	require.NoError(t, err, "annotate mode takes kill rules when response is off")
	assert.Equal(t, ResponseOff, cfg.Response.Mode)

	for name, want := range map[string]string{
		"bad_mode":           `mode "loud" is not one of alerts, annotate, both`,
		"missing_file":       `rules: "testdata/nope.yaml" is neither a default pack`,
		"bad_rule":           "testdata/bad_rule.yaml:5: rule \"Broken\": condition does not compile",
		"empty":              "rules: name at least one default pack",
		"bad_response_mode":  `response.mode "kill" is not one of enforce, dry_run, off`,
		"bad_tier":           `tier "gateway" is not one of all, front, route, rules`,
		"rules_tier_both":    "tier rules takes the front tier's copies of events, which the front already sent: use mode alerts",
		"annotate_kill":      "rules with action: kill need alerts to report what was done, and mode annotate emits none",
		"bad_reorder_window": "reorder_window must not be negative (0 takes events in arrival order), got -1s",
		"bad_max_held":       "state.max_held_events must be positive, got 0",
	} {
		_, err := loadConfig(t, name)
		assert.ErrorContains(t, err, want, name)
	}
}

func newTestProcessor(t *testing.T, tt *componenttest.Telemetry, cfg *Config, sink *consumertest.LogsSink) processor.Logs {
	t.Helper()
	require.NoError(t, cfg.Validate())
	p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func testCfg(mode string, rulesFile string) *Config {
	cfg := createDefaultConfig()
	cfg.Rules = []string{rulesFile}
	cfg.Mode = mode
	return cfg
}

// auditBatch is two audit events from one pod's namespace: a secret read
// and a pod list.
func auditBatch() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.cluster.name", "prod")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, e := range []struct{ id, verb, resource, name string }{
		{"a-1", "get", "secrets", "db"}, {"a-2", "list", "pods", ""},
	} {
		lr := lrs.AppendEmpty()
		lr.SetEventName("k8s.audit")
		lr.SetTimestamp(1e18)
		lr.Attributes().PutStr("k8s.audit.id", e.id)
		lr.Attributes().PutStr("k8s.audit.verb", e.verb)
		lr.Attributes().PutStr("k8s.audit.object.resource", e.resource)
		lr.Attributes().PutStr("k8s.audit.object.name", e.name)
		lr.Attributes().PutStr("user.name", "alice")
		lr.Attributes().PutEmptyMap("k8s.audit.request_object").PutStr("kind", "Secret")
	}
	return ld
}

// records lists every record that reached the sink as (event name, audit id).
func records(sink *consumertest.LogsSink) (events, alerts []plog.LogRecord) {
	for _, ld := range sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == "security.alert" {
						alerts = append(alerts, lr)
					} else {
						events = append(events, lr)
					}
				}
			}
		}
	}
	return events, alerts
}

func attr(lr plog.LogRecord, k string) any {
	v, ok := lr.Attributes().Get(k)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

func TestModes(t *testing.T) {
	for _, mode := range []string{ModeBoth, ModeAlerts, ModeAnnotate} {
		t.Run(mode, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			p := newTestProcessor(t, componenttest.NewTelemetry(), testCfg(mode, "testdata/rules.yaml"), sink)
			require.NoError(t, p.ConsumeLogs(context.Background(), auditBatch()))
			events, alerts := records(sink)

			if mode == ModeAlerts {
				assert.Empty(t, events, "alerts mode drops the events")
			} else {
				require.Len(t, events, 2)
				assert.Equal(t, []any{"Secret read"}, attr(events[0], "security_rule.matched"))
				assert.Nil(t, attr(events[1], "security_rule.matched"), "only matched events are annotated")
			}
			if mode == ModeAnnotate {
				assert.Empty(t, alerts)
				return
			}
			require.Len(t, alerts, 1)
			a := alerts[0]
			assert.Equal(t, "secret db read by alice", a.Body().Str())
			assert.Equal(t, "a-1", attr(a, "k8s.audit.id"), "the alert carries its evidence's audit ID")
			assert.Equal(t, "Secret read", attr(a, "security_rule.name"))
			assert.Equal(t, "test", attr(a, "security_rule.ruleset.name"))
			assert.Equal(t, plog.SeverityNumberWarn2, a.SeverityNumber())
			ld := sink.AllLogs()[0]
			alertRL := ld.ResourceLogs().At(ld.ResourceLogs().Len() - 1)
			cluster, _ := alertRL.Resource().Attributes().Get("k8s.cluster.name")
			assert.Equal(t, "prod", cluster.Str(), "the alert keeps the event's resource")
			assert.Equal(t, metadata.ScopeName, alertRL.ScopeLogs().At(0).Scope().Name())
		})
	}
}

func TestSelfMetrics(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, tt, testCfg(ModeBoth, "testdata/rules.yaml"), sink)
	for range 3 {
		require.NoError(t, p.ConsumeLogs(context.Background(), auditBatch()))
	}
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	rule := attribute.String("security_rule.name", "Secret read")
	metadatatest.AssertEqualProcessorSecurityRulesEventsEvaluated(t, tt, []metricdata.DataPoint[int64]{{Value: 6}}, opts...)
	metadatatest.AssertEqualProcessorSecurityRulesMatches(t, tt, []metricdata.DataPoint[int64]{{Value: 3, Attributes: attribute.NewSet(rule)}}, opts...)
	metadatatest.AssertEqualProcessorSecurityRulesAlerts(t, tt, []metricdata.DataPoint[int64]{{Value: 3, Attributes: attribute.NewSet(rule)}}, opts...)
}

func TestThrottleSummaryIsFlushed(t *testing.T) {
	cfg := testCfg(ModeAlerts, "testdata/rules.yaml")
	cfg.FlushInterval = 20 * time.Millisecond
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)
	for range 5 {
		ld := plog.NewLogs()
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("http.access")
		lr.SetTimestamp(1e18)
		lr.Attributes().PutInt("http.response.status_code", 404)
		lr.Attributes().PutStr("client.address", "198.51.100.7")
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	}
	require.Eventually(t, func() bool { _, a := records(sink); return len(a) == 2 }, 5*time.Second, 10*time.Millisecond)
	_, alerts := records(sink)
	assert.Equal(t, "404 from 198.51.100.7", alerts[0].Body().Str())
	assert.Equal(t, `4 more matches of "Not found" were throttled`, alerts[1].Body().Str())
	assert.Equal(t, int64(4), attr(alerts[1], "security_rule.count"))
	assert.Equal(t, "198.51.100.7", attr(alerts[1], "client.address"))
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	write := func(cond string) {
		require.NoError(t, os.WriteFile(file, []byte("- rule: R\n  events: [k8s.audit]\n  severity: low\n  output: r\n  condition: "+cond+"\n"), 0o600))
	}
	write(`k8s.audit.verb == "get"`)
	cfg := testCfg(ModeAlerts, file)
	cfg.ReloadInterval = 10 * time.Millisecond
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, tt, cfg, sink)

	alertsFor := func() int {
		sink.Reset()
		require.NoError(t, p.ConsumeLogs(context.Background(), auditBatch()))
		_, a := records(sink)
		return len(a)
	}
	assert.Equal(t, 1, alertsFor())

	write(`k8s.audit.verb in ["get", "list"]`)
	require.Eventually(t, func() bool { return alertsFor() == 2 }, 5*time.Second, 20*time.Millisecond, "the new rule is live")

	write(`k8s.audit.verb ==`) // broken: the running rules stay
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}
	require.Eventually(t, func() bool {
		m, err := tt.GetMetric("otelcol_processor_security_rules_reloads")
		return err == nil && len(m.Data.(metricdata.Sum[int64]).DataPoints) == 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, 2, alertsFor(), "a failed reload keeps the running rules")
	metadatatest.AssertEqualProcessorSecurityRulesReloads(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "success"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "failure"))},
	}, opts...)
}
