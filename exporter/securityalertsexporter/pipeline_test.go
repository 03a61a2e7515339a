package securityalertsexporter

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/alertmanagertest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver"
)

// TestAuditRulesAlertmanagerPipeline drives a real audit stream through
// k8s_audit → security_rules (the default k8s_audit pack) → security_alerts
// into a real Alertmanager, and checks there that every rule that fired is
// an alert with the specified labels and annotations, and no per-event label.
func TestAuditRulesAlertmanagerPipeline(t *testing.T) {
	am := alertmanagertest.Start(t)
	ctx := context.Background()

	exp, _ := newTestExporter(t, testConfig(FormatAlertmanager, am.URL()))
	fired := new(consumertest.LogsSink) // what the rules emitted, to compare with Alertmanager
	tee, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		_ = fired.ConsumeLogs(ctx, ld)
		return exp.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)

	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules = []string{"k8s_audit"}
	pcfg.Mode = securityrulesprocessor.ModeAlerts
	require.NoError(t, pcfg.Validate())
	proc, err := pf.CreateLogs(ctx, processortest.NewNopSettings(pf.Type()), pcfg, tee)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(ctx)) })

	rf := k8sauditreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*k8sauditreceiver.Config)
	port := testenv.FreePort(t)
	rcfg.Webhook.NetAddr.Endpoint = "127.0.0.1:" + strconv.Itoa(port)
	rcv, err := rf.CreateLogs(ctx, receivertest.NewNopSettings(rf.Type()), rcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(ctx)) })

	events, err := os.ReadFile("testdata/audit_events.json")
	require.NoError(t, err)
	resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/k8s-audit", "application/json", bytes.NewReader(events))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// What fired, by rule name, with the labels each must have in Alertmanager.
	want := map[string]map[string]string{}
	for _, ld := range fired.AllLogs() {
		alerts, _, _ := collectAlerts(ld, nil)
		for _, a := range alerts {
			want[a.Rule] = map[string]string{"rule_id": a.RuleID, "severity": a.Severity, "ruleset": "k8s_audit", "category": a.Category}
		}
	}
	require.Contains(t, want, "Exec or attach into a pod")
	require.Contains(t, want, "Secret read by a non-system identity")
	require.Contains(t, want, "Anonymous request allowed")

	got := am.WaitAlerts(15*time.Second, func(as []alertmanagertest.Alert) bool { return len(as) >= len(want) })
	require.Len(t, got, len(want), "one Alertmanager alert per rule and place: the two execs into web-0 are one")
	for _, a := range got {
		name := a.Labels["alertname"]
		require.Contains(t, want, name, "Alertmanager has an alert no rule fired")
		for k, v := range want[name] {
			assert.Equal(t, v, a.Labels[k], "%s: label %s", name, k)
		}
		assert.NotEmpty(t, a.Annotations["summary"], "%s: summary is the rendered output", name)
		assert.NotEmpty(t, a.Annotations["evidence_ids"], "%s: evidence IDs", name)
		assert.NotEmpty(t, a.Annotations["mitre_techniques"], "%s: MITRE techniques", name)
		assertNoPerEventLabel(t, a, "e2e-exec-1", "e2e-exec-2", "e2e-secret-1", "e2e-anon-1",
			"203.0.113.7", "203.0.113.8", "198.51.100.9", "alice", "system:anonymous")
		if name == "Exec or attach into a pod" {
			assert.Equal(t, "shop", a.Labels["namespace"])
			assert.Equal(t, "web-0", a.Labels["pod"])
			assert.Contains(t, []string{"e2e-exec-1", "e2e-exec-2"}, a.Annotations["evidence_ids"])
		}
	}
}
