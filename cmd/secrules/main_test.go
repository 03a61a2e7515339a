package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

const goodRules = `- list: admins
  items: [alice]
- macro: secret_read
  condition: k8s.audit.object.resource == "secrets" && k8s.audit.verb in ["get", "list"]
- rule: Secret read
  id: T-0001
  events: [k8s.audit]
  condition: secret_read && !(user.name in admins)
  severity: high
  output: "%{user.name} read a secret in %{k8s.namespace.name}"
  tests:
    - name: bob reads a secret
      match: true
      event: {user.name: bob, k8s.audit.verb: get, k8s.audit.object.resource: secrets}
    - name: an admin reads a secret
      match: false
      event: {user.name: alice, k8s.audit.verb: get, k8s.audit.object.resource: secrets}
- rule: Pod deleted
  events: [k8s.audit]
  condition: k8s.audit.verb == "delete" && k8s.audit.object.resource == "pods"
  severity: low
  output: "%{user.name} deleted pod %{k8s.audit.object.name}"
  throttle: {by: [user.name], period: 5m}
  tests:
    - name: delete
      match: true
      event: {user.name: bob, k8s.audit.verb: delete, k8s.audit.object.resource: pods}
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.yaml", goodRules)
	code, out, errOut := runCmd("validate", good)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "ok: "+good+": 2 rules, 1 list, 1 macro\n", out)

	bad := write(t, dir, "bad.yaml", `- rule: Urgent
  events: [k8s.audit]
  condition: user.name == "x"
  severity: urgent
  output: o
- rule: No events
  condition: user.name == "x"
  severity: low
  output: o
`)
	code, out, errOut = runCmd("validate", good, bad)
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, bad+`:1: rule "Urgent": severity "urgent" is not one of info, low, medium, high, critical`+"\n"+
		bad+`:6: rule "No events": events is required: the EventNames the rule applies to (e.g. [k8s.audit])`+"\n", errOut)

	code, _, errOut = runCmd("validate", filepath.Join(dir, "missing.yaml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "missing.yaml: no such file or directory")

	code, _, errOut = runCmd("validate", filepath.Join(dir, "*.yml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "*.yml: no file matches")

	code, _, _ = runCmd("validate")
	assert.Equal(t, 2, code)
}

func TestUnknownAttributesWarnOrFailWithStrict(t *testing.T) {
	dir := t.TempDir()
	typo := write(t, dir, "typo.yaml", `- rule: Typo
  events: [k8s.audit]
  condition: user.nam == "bob"
  severity: low
  output: o
  tests:
    - name: never matches, since the attribute is misspelled
      match: false
      event: {user.name: bob}
`)
	want := typo + `:3: rule "Typo": attribute "user.nam" is not a known attribute (did you mean user.name?)`
	code, out, errOut := runCmd("validate", typo)
	assert.Equal(t, 0, code, "a warning does not fail")
	assert.Equal(t, "ok: "+typo+": 1 rule, 0 lists, 0 macros\n", out)
	assert.Contains(t, errOut, "warning: "+want+"; it is read as the event carries it")

	code, out, errOut = runCmd("test", "-rules", typo)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "1 passed, 0 failed\n", out)
	assert.Contains(t, errOut, "warning: "+want)

	for _, args := range [][]string{{"validate", "-strict", typo}, {"test", "-strict", "-rules", typo}} {
		code, _, errOut = runCmd(args...)
		assert.Equal(t, 1, code, args)
		assert.Equal(t, want+"\n", errOut, args)
	}
}

func TestInlineTests(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.yaml", goodRules)
	code, out, _ := runCmd("test", "--rules", good)
	assert.Equal(t, 0, code)
	assert.Equal(t, "3 passed, 0 failed\n", out)

	code, out, _ = runCmd("test", "-v", "--rules", good)
	assert.Equal(t, 0, code)
	assert.Equal(t, 4, strings.Count(out, "\n"), out)
	assert.Contains(t, out, `ok `+good+`:12 "Secret read" / "bob reads a secret": want match=true, got true`)

	// A second file extends the first; one of its cases expects the wrong thing.
	more := write(t, dir, "more.yaml", `- list: admins
  append: true
  items: [carol]
- rule: Namespace deleted
  events: [k8s.audit]
  condition: k8s.audit.verb == "delete" && k8s.audit.object.resource == "namespaces"
  severity: medium
  output: o
  tests:
    - name: wrong expectation
      match: true
      event: {k8s.audit.verb: delete, k8s.audit.object.resource: pods}
`)
	code, out, _ = runCmd("test", "--rules", good, "--rules", more)
	assert.Equal(t, 1, code)
	assert.Equal(t, `FAIL `+more+`:10 "Namespace deleted" / "wrong expectation": want match=true, got false`+"\n"+
		"3 passed, 1 failed\n", out)

	code, _, errOut := runCmd("test", good)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unexpected argument`)
}

// otlpLine is what the collector's file exporter writes for one record.
func otlpLine(t *testing.T, at time.Time, attrs map[string]any) string {
	t.Helper()
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.cluster.name", "prod")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("k8s.audit")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	require.NoError(t, lr.Attributes().FromRaw(attrs))
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(logs)
	require.NoError(t, err)
	return string(b)
}

func TestEvents(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.yaml", goodRules)
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	lines := []string{
		`{"event_name": "k8s.audit", "time": "2026-11-29T12:00:00Z", "attributes": {"user.name": "bob", "k8s.audit.verb": "get", "k8s.audit.object.resource": "secrets", "k8s.namespace.name": "payments", "http.response.status_code": 200}, "resource": {"k8s.cluster.name": "prod"}}`,
		otlpLine(t, t0.Add(time.Second), map[string]any{"user.name": "carol", "k8s.audit.verb": "delete",
			"k8s.audit.object.resource": "pods", "k8s.audit.object.name": "web-1"}),
		`this is not json`,
		``,
		`{"event_name": "k8s.audit", "attributes": {"user.name": "alice", "k8s.audit.verb": "list", "k8s.audit.object.resource": "secrets"}}`,
		`{"event_name": "k8s.audit", "time": "2026-11-29T12:00:02Z", "attributes": {"user.name": "carol", "k8s.audit.verb": "delete", "k8s.audit.object.resource": "pods", "k8s.audit.object.name": "web-2"}}`,
		`{"event_name": "k8s.audit", "attrs": {}}`,
		`[1, 2]`,
	}
	events := write(t, dir, "events.jsonl", strings.Join(lines, "\n")+"\n")

	code, out, errOut := runCmd("test", "--rules", good, "--events", events)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, events+":3: not a JSON object: invalid character")
	assert.Contains(t, errOut, events+`:7: event: json: unknown field "attrs"`)
	assert.Contains(t, errOut, events+":8: not a JSON object but a JSON array\n")
	assert.Contains(t, errOut, events+": 4 events, 3 alerts, 3 bad lines\n")

	var alerts []alert
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var a alert
		require.NoError(t, json.Unmarshal([]byte(l), &a), l)
		alerts = append(alerts, a)
	}
	require.Len(t, alerts, 3, out)

	assert.Equal(t, "Secret read", alerts[0].Rule)
	assert.Equal(t, "high", alerts[0].Severity)
	assert.Equal(t, "bob read a secret in payments", alerts[0].Output)
	assert.Equal(t, "2026-11-29T12:00:00Z", alerts[0].Time)
	assert.Equal(t, "T-0001", alerts[0].Attributes["security_rule.uuid"])
	assert.Equal(t, "bob", alerts[0].Attributes["user.name"])
	assert.Equal(t, float64(200), alerts[0].Attributes["http.response.status_code"])

	assert.Equal(t, "Pod deleted", alerts[1].Rule)
	assert.Equal(t, "carol deleted pod web-1", alerts[1].Output)
	assert.Equal(t, "2026-11-29T12:00:01Z", alerts[1].Time)

	// The second delete was throttled; the end of the input reports it.
	assert.Equal(t, "Pod deleted", alerts[2].Rule)
	assert.Equal(t, `1 more matches of "Pod deleted" were throttled`, alerts[2].Output)
	assert.Equal(t, true, alerts[2].Attributes["security_rule.throttled"])
}
