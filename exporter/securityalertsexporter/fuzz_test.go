package securityalertsexporter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// fuzzTemplate reads every kind of field, so that a missing one shows.
const fuzzTemplate = `{"r": {{ json .Rule }}, "s": {{ json .Severity }}, "o": {{ json .Output }},
"p": {{ json (attr . "k8s.pod.name") }}, "t": {{ json .Techniques }}, "e": {{ json .EvidenceIDs }},
"a": {{ json (index .Attrs "process.pid") }}, "when": {{ json .Time }}}`

// FuzzRenderAlert builds an alert record from arbitrary attributes (any of
// them missing, of the wrong type, or a map where a list is expected) and
// renders it in every format: it must never panic, and each body must be
// valid JSON.
func FuzzRenderAlert(f *testing.F) {
	f.Add("Exec or attach into a pod", "medium", "out", "k8s.audit", "k8s.pod.name", "web-0", int64(42), true, int64(1e18))
	f.Add("", "", "", "", "", "", int64(0), false, int64(0))
	f.Add("r", "nonsense", "\x00\xff", "process.exec", "security_rule.mitre.techniques", "T1", int64(-1), true, int64(-1))
	f.Add("r", "critical", "{{ .Rule }}", "http.access", "security_rule.evidence", "x", int64(7), false, int64(1))
	tmpl, err := parseTemplate(fuzzTemplate)
	require.NoError(f, err)
	cfg := createDefaultConfig().(*Config)

	f.Fuzz(func(t *testing.T, rule, severity, output, event, key, value string, n int64, asMap bool, ts int64) {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutInt("process.pid", n)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("security.alert")
		lr.SetTimestamp(pcommon.Timestamp(ts))
		lr.SetSeverityText(severity)
		lr.SetSeverityNumber(plog.SeverityNumber(n % 30))
		lr.Body().SetStr(output)
		attrs := lr.Attributes()
		if rule != "" {
			attrs.PutStr("security_rule.name", rule)
		}
		attrs.PutStr("security_rule.event.name", event)
		if asMap {
			attrs.PutEmptyMap(key).PutStr(value, value) // a map where a string or list is expected
		} else {
			s := attrs.PutEmptySlice(key)
			s.AppendEmpty().SetStr(value)
			s.AppendEmpty().SetEmptyMap().PutEmptyMap("attributes").PutStr("k8s.audit.id", value)
		}

		alerts, passed, _ := collectAlerts(ld, nil)
		require.Len(t, alerts, 1)
		require.Zero(t, passed)
		a := &alerts[0]
		now := time.Unix(0, 0)
		for name, render := range map[string]func() ([]byte, error){
			"alertmanager": func() ([]byte, error) { return renderAlertmanager(alerts, &cfg.Alertmanager, now) },
			"falco":        func() ([]byte, error) { return renderFalco(a, "host") },
			"slack":        func() ([]byte, error) { return renderSlack(a) },
			"flat":         func() ([]byte, error) { return renderWebhook(nil, a) },
			"template":     func() ([]byte, error) { return renderWebhook(tmpl, a) },
		} {
			body, err := render()
			require.NoError(t, err, name)
			assert.True(t, json.Valid(body), "%s: not JSON: %s", name, body)
		}
	})
}

// An alert record with nothing on it but its event name still renders, in
// every format, with empty fields.
func TestEmptyAlertRendersEmptyFields(t *testing.T) {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName("security.alert")
	alerts, _, _ := collectAlerts(ld, nil)
	require.Len(t, alerts, 1)
	a := &alerts[0]

	body, err := renderFalco(a, "host")
	require.NoError(t, err)
	var falco map[string]any
	require.NoError(t, json.Unmarshal(body, &falco))
	assert.Equal(t, "", falco["rule"])
	assert.Equal(t, "", falco["priority"])
	assert.Equal(t, "host", falco["hostname"])

	body, err = renderWebhook(nil, a)
	require.NoError(t, err)
	var flat map[string]any
	require.NoError(t, json.Unmarshal(body, &flat))
	assert.Equal(t, "", flat["rule"])
	assert.Equal(t, []any{}, flat["tags"])

	cfg := createDefaultConfig().(*Config)
	body, err = renderAlertmanager(alerts, &cfg.Alertmanager, time.Now())
	require.NoError(t, err)
	var am []amAlert
	require.NoError(t, json.Unmarshal(body, &am))
	assert.Equal(t, map[string]string{"alertname": "security.alert"}, am[0].Labels, "Alertmanager refuses an alert without labels")

	_, err = renderSlack(a)
	require.NoError(t, err)
}
