//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// An application's own log, read by contrib's filelog receiver in the built
// collector, meets rules over attributes no table of ours lists: the file's
// name (log.file.name) and the fields the json_parser lifts. Such records have
// no EventName (events: [""]). One rule holds nothing; the other counts by
// user.name, on the records' observed time (filelog sets no Timestamp).
func TestRulesOverFilelogAttributes(t *testing.T) {
	dir := t.TempDir()
	appLog := filepath.Join(dir, "auth.jsonl")
	require.NoError(t, os.WriteFile(appLog, nil, 0o600))
	rulesFile := filepath.Join(dir, "app-rules.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
- rule: Repeated sudo attempts in the app log
  events: [""]
  condition: >-
    log.file.name == "auth.jsonl" && app.action == "sudo"
    && has(app.attempts) && app.attempts > 3 && app.admin
  severity: medium
  output: "%{user.name} tried sudo %{app.attempts} times"
- rule: Failed logins of one user in the app log
  events: [""]
  condition: log.file.name == "auth.jsonl" && app.action == "login" && app.ok == false
  threshold:
    by: [user.name]
    count: 3
    window: 1m
  severity: high
  output: "%{user.name} failed to log in, again and again"
`), 0o600))
	out := filepath.Join(dir, "out.jsonl")
	health, metrics := testenv.FreePort(t), testenv.FreePort(t)
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  filelog:
    include: [%q]
    start_at: beginning
    poll_interval: 50ms
    operators:
      - type: json_parser
processors:
  security_rules:
    rules: [%q]
    mode: both
exporters:
  file:
    path: %q
service:
  extensions: [health_check]
  pipelines:
    logs:
      receivers: [filelog]
      processors: [security_rules]
      exporters: [file]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: localhost
                port: %d
`, health, appLog, rulesFile, out, metrics), 0o600))

	c := start(t, binary(t), dir, nil, "--config", "file:"+cfg)
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", health))
	assert.Contains(t, c.output.String(), "Rule reads an attribute the vocabulary does not know", "an unknown name loads, with a warning")
	assert.Contains(t, c.output.String(), "app.action")

	// Written while the collector runs, as the application does.
	f, err := os.OpenFile(appLog, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	for _, line := range []string{
		`{"app.action":"login","app.ok":false,"user.name":"alice"}`,
		`{"app.action":"sudo","app.attempts":5,"app.admin":true,"user.name":"mallory"}`,
		`{"app.action":"login","app.ok":false,"user.name":"bob"}`,
		`{"app.action":"sudo","app.attempts":2,"app.admin":true,"user.name":"bob"}`,
		`{"app.action":"login","app.ok":false,"user.name":"alice"}`,
		`{"app.action":"sudo","app.admin":true,"user.name":"eve"}`,
		`{"app.action":"login","app.ok":true,"user.name":"bob"}`,
		`{"app.action":"login","app.ok":false,"user.name":"alice"}`,
	} {
		_, err := f.WriteString(line + "\n")
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())

	// The threshold waits for the reorder window (10 s) of a quiet stream.
	var alerts map[string][]alert
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var err error
		alerts, err = readAlerts(out)
		if assert.NoError(ct, err) {
			assert.Len(ct, alerts["Repeated sudo attempts in the app log"], 1)
			assert.Len(ct, alerts["Failed logins of one user in the app log"], 1)
		}
	}, 60*time.Second, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	alerts, err = readAlerts(out)
	require.NoError(t, err)
	sudo := alerts["Repeated sudo attempts in the app log"]
	require.Len(t, sudo, 1, "mallory only: bob tried twice, eve's record has no app.attempts")
	assert.Equal(t, "mallory tried sudo 5 times", sudo[0].Body().AsString())
	assert.Equal(t, "auth.jsonl", attr(sudo[0].LogRecord, "log.file.name"))
	logins := alerts["Failed logins of one user in the app log"]
	require.Len(t, logins, 1, "alice three times; bob once, then a success")
	assert.Equal(t, "alice", attr(logins[0].LogRecord, "user.name"))
	assert.Equal(t, "3", attr(logins[0].LogRecord, "security_rule.count"))
	// eve's sudo has no app.attempts: has() guards the read, so no error.
	v, err := scrapeMetric(metrics, "otelcol_processor_security_rules_evaluation_errors", "")
	require.NoError(t, err)
	assert.Zero(t, v)
}
