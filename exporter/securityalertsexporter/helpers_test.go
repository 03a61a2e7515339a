package securityalertsexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadatatest"
)

// eventTime is when the test's events happened.
var eventTime = time.Date(2026, 12, 1, 10, 20, 30, 123456000, time.UTC)

// alertSpec is the part of a security.alert record a test chooses.
type alertSpec struct {
	rule, id, severity, output, event string
	attrs                             map[string]any // record attributes
	resource                          map[string]any
}

// appendAlert adds an alert record as the security_rules processor writes it.
func appendAlert(ld plog.Logs, s alertSpec) {
	rl := ld.ResourceLogs().AppendEmpty()
	_ = rl.Resource().Attributes().FromRaw(s.resource)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("security.alert")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(eventTime))
	lr.SetSeverityText(s.severity)
	lr.Body().SetStr(s.output)
	a := lr.Attributes()
	_ = a.FromRaw(s.attrs)
	a.PutStr("security_rule.name", s.rule)
	a.PutStr("security_rule.uuid", s.id)
	a.PutStr("security_rule.category", "execution")
	a.PutStr("security_rule.description", "Someone opened a shell in a container.")
	a.PutStr("security_rule.reference", "https://example.test/rules/"+s.id)
	a.PutStr("security_rule.ruleset.name", "k8s_audit")
	a.PutStr("security_rule.event.name", s.event)
	a.PutInt("security_rule.count", 1)
	tags := a.PutEmptySlice("security_rule.tags")
	tags.AppendEmpty().SetStr("k8s")
	tags.AppendEmpty().SetStr("mitre.T1609")
	a.PutEmptySlice("security_rule.mitre.tactics").AppendEmpty().SetStr("TA0002")
	a.PutEmptySlice("security_rule.mitre.techniques").AppendEmpty().SetStr("T1609")
}

// execAlert is an audit alert for an exec into pod web-0, with audit ID id.
func execAlert(id string) alertSpec {
	return alertSpec{
		rule: "Exec or attach into a pod", id: "K8SA-0018", severity: "medium", event: "k8s.audit",
		output: "exec into pod shop/web-0 by alice (audit " + id + ")",
		attrs: map[string]any{
			"k8s.audit.id": id, "user.name": "alice", "k8s.audit.verb": "create",
			"k8s.namespace.name": "shop", "k8s.pod.name": "web-0", "client.address": "203.0.113.7",
			"k8s.audit.request_uri": "/api/v1/namespaces/shop/pods/web-0/exec?command=sh",
		},
		resource: map[string]any{"k8s.cluster.name": "prod"},
	}
}

// newTestExporter creates and starts the exporter with cfg, no queue unless
// the config has one, and returns it with its telemetry.
func newTestExporter(t *testing.T, cfg *Config) (exporter.Logs, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp, tt
}

// testConfig is a config for format to endpoint that sends at once: no
// queue (ConsumeLogs returns the outcome) and quick retries.
func testConfig(format, endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Format = format
	cfg.Endpoint = endpoint
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 5 * time.Second
	return cfg
}

var ignoreTimes = []metricdatatest.Option{metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars()}

// sum is one data point of a counter.
func sum(v int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Value: v, Attributes: attribute.NewSet(attrs...)}
}
