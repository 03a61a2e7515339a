package securityalertsexporter

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadatatest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/alertmanagertest"
)

// The labels an exec alert must carry, and nothing else.
var wantExecLabels = map[string]string{
	"alertname": "Exec or attach into a pod",
	"severity":  "medium",
	"rule_id":   "K8SA-0018",
	"ruleset":   "k8s_audit",
	"category":  "execution",
	"cluster":   "prod",
	"namespace": "shop",
	"pod":       "web-0",
}

func TestAlertmanagerRendering(t *testing.T) {
	ld := plog.NewLogs()
	appendAlert(ld, execAlert("audit-1"))
	alerts, _, _ := collectAlerts(ld, nil)
	now := eventTime.Add(time.Second)
	cfg := createDefaultConfig().(*Config)
	body, err := renderAlertmanager(alerts, &cfg.Alertmanager, now)
	require.NoError(t, err)
	var got []amAlert
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got, 1)
	a := got[0]
	assert.Equal(t, wantExecLabels, a.Labels)
	assert.Equal(t, "exec into pod shop/web-0 by alice (audit audit-1)", a.Annotations["summary"])
	assert.Equal(t, "Someone opened a shell in a container.", a.Annotations["description"])
	assert.Equal(t, "TA0002", a.Annotations["mitre_tactics"])
	assert.Equal(t, "T1609", a.Annotations["mitre_techniques"])
	assert.Equal(t, "audit-1", a.Annotations["evidence_ids"])
	assert.Equal(t, "203.0.113.7", a.Annotations["client_address"])
	assert.Equal(t, "https://example.test/rules/K8SA-0018", a.Annotations["reference"])
	assert.True(t, a.StartsAt.Equal(eventTime), "startsAt is the event time: %v", a.StartsAt)
	assert.True(t, a.EndsAt.Equal(now.Add(5*time.Minute)), "endsAt is now + resolve_timeout: %v", a.EndsAt)
}

func TestAlertmanagerLabelsRefusePerEventAttributes(t *testing.T) {
	cfg := testConfig(FormatAlertmanager, "http://127.0.0.1:9093")
	cfg.Alertmanager.Labels["pid"] = "process.pid"
	cfg.Alertmanager.Labels["bad-name"] = "k8s.node.name"
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pid: "process.pid" has a value per event`)
	assert.Contains(t, err.Error(), `"bad-name" is not a valid label name`)
}

// TestAlertmanagerReal sends alerts to a real Alertmanager and reads them
// back through its API: two firings of one rule in one pod are one alert
// (no per-event label), another rule is another, a non-alert is passed over.
func TestAlertmanagerReal(t *testing.T) {
	am := alertmanagertest.Start(t)
	exp, tt := newTestExporter(t, testConfig(FormatAlertmanager, am.URL()))

	ld := plog.NewLogs()
	appendAlert(ld, execAlert("audit-1"))
	appendAlert(ld, execAlert("audit-2"))
	secret := execAlert("audit-3")
	secret.rule, secret.id, secret.severity = "Secret read by a non-system identity", "K8SA-0036", "high"
	appendAlert(ld, secret)
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName("k8s.audit")
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))

	got := am.WaitAlerts(10*time.Second, func(as []alertmanagertest.Alert) bool { return len(as) == 2 })
	byName := map[string]alertmanagertest.Alert{}
	for _, a := range got {
		byName[a.Labels["alertname"]] = a
		assertNoPerEventLabel(t, a, "audit-1", "audit-2", "audit-3", "203.0.113.7", "alice")
	}
	exec := byName["Exec or attach into a pod"]
	assert.Equal(t, wantExecLabels, exec.Labels)
	assert.Equal(t, "active", exec.Status.State)
	assert.Contains(t, []string{"audit-1", "audit-2"}, exec.Annotations["k8s_audit_id"], "the last firing's evidence")
	assert.Equal(t, "high", byName["Secret read by a non-system identity"].Labels["severity"])
	assert.True(t, exec.StartsAt.Equal(eventTime.Truncate(time.Millisecond)), "startsAt is the event time (Alertmanager keeps milliseconds): %v", exec.StartsAt)

	// A new firing of the same labels refreshes endsAt (now + resolve_timeout).
	time.Sleep(1100 * time.Millisecond)
	again := plog.NewLogs()
	appendAlert(again, execAlert("audit-4"))
	require.NoError(t, exp.ConsumeLogs(context.Background(), again))
	am.WaitAlerts(10*time.Second, func(as []alertmanagertest.Alert) bool {
		for _, a := range as {
			if a.Labels["alertname"] == exec.Labels["alertname"] {
				return len(as) == 2 && a.EndsAt.After(exec.EndsAt) && a.Annotations["k8s_audit_id"] == "audit-4"
			}
		}
		return false
	})

	metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(4)}, ignoreTimes...)
	metadatatest.AssertEqualExporterSecurityAlertsPassedOver(t, tt, []metricdata.DataPoint[int64]{sum(1)}, ignoreTimes...)
}

// assertNoPerEventLabel fails when a label is not one of the configured
// names or holds one of the events' own values.
func assertNoPerEventLabel(t *testing.T, a alertmanagertest.Alert, perEvent ...string) {
	t.Helper()
	allowed := append(slices.Collect(maps.Keys(defaultLabels())), "alertname")
	for k, v := range a.Labels {
		assert.Contains(t, allowed, k, "label %q is not one of the low-cardinality labels", k)
		assert.NotContains(t, perEvent, v, "label %s=%q holds a per-event value", k, v)
	}
}
