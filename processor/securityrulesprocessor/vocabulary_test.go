package securityrulesprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/parser/json"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadatatest"
)

func writeRules(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

// kernelBatch is what the ebpf receiver sends for two pods' shells: the pod's
// identity, labels (k8s.pod.label.<key>, as internal/podidentity writes them)
// and the process on the resource, what happened on the record.
func kernelBatch() plog.Logs {
	ld := plog.NewLogs()
	for _, pod := range []struct{ name, team string }{{"checkout-7d9", "payments"}, {"search-5c2", "search"}} {
		rl := ld.ResourceLogs().AppendEmpty()
		res := rl.Resource().Attributes()
		res.PutStr("k8s.namespace.name", "shop")
		res.PutStr("k8s.pod.name", pod.name)
		res.PutStr("k8s.pod.uid", "uid-"+pod.name)
		res.PutStr("k8s.pod.label.team", pod.team)
		res.PutStr("k8s.pod.label.app.kubernetes.io/name", pod.name[:6])
		res.PutStr("container.id", "c0ffee")
		res.PutInt("process.pid", 4242)
		res.PutStr("process.executable.path", "/bin/sh")
		res.PutStr("process.executable.name", "sh")
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName("process.exec")
		lr.SetTimestamp(1e18)
		lr.Attributes().PutStr("process.command_line", "sh -c id")
	}
	return ld
}

func TestRuleOnAPodLabelFiresOnKernelEvents(t *testing.T) {
	path := writeRules(t, `
- rule: Shell in a payments pod
  events: [process.exec]
  condition: k8s.pod.label.team == "payments" && process.executable.name in ["sh", "bash"]
  severity: high
  output: shell in %{k8s.pod.name} of team %{k8s.pod.label.team}
`)
	sink := new(consumertest.LogsSink)
	cfg := testCfg(ModeAlerts, path)
	cfg.StrictAttributes = true // the label is an open family: strict takes it
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), kernelBatch()))

	_, alerts := records(sink)
	require.Len(t, alerts, 1, "the payments pod only")
	assert.Equal(t, "shell in checkout-7d9 of team payments", alerts[0].Body().Str())
	assert.Equal(t, "Shell in a payments pod", attr(alerts[0], "security_rule.name"))
	res := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes()
	pod, _ := res.Get("k8s.pod.name")
	assert.Equal(t, "checkout-7d9", pod.Str(), "the alert carries the pod's resource")
}

func TestUnknownAttributeIsLoggedWithTheClosestName(t *testing.T) {
	path := writeRules(t, `
- rule: Typo
  events: [process.exec]
  condition: k8s.pod.nme == "checkout-7d9"
  severity: low
  output: o
`)
	core, logs := observer.New(zap.WarnLevel)
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	set.Logger = zap.New(core)
	cfg := testCfg(ModeAlerts, path)
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err, "an unknown name loads")
	require.NoError(t, p.Shutdown(context.Background()))
	require.Equal(t, 1, logs.Len())
	where := logs.All()[0].ContextMap()["where"]
	assert.Contains(t, where, `rules.yaml:4: rule "Typo": attribute "k8s.pod.nme" is not a known attribute (did you mean k8s.pod.name?)`)

	cfg.StrictAttributes = true
	assert.ErrorContains(t, cfg.Validate(), `did you mean k8s.pod.name?`, "strict_attributes refuses it")
}

// A rule reads what contrib's filelog receiver writes: log.file.name, and the
// fields its json_parser lifts into attributes. Such records have no
// EventName: the rule names "".
func TestRuleOverFilelogAttributes(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.jsonl")
	require.NoError(t, os.WriteFile(logPath, []byte(
		`{"app.action":"login","app.attempts":1,"app.admin":false,"user.name":"alice"}`+"\n"+
			`{"app.action":"sudo","app.attempts":5,"app.admin":true,"user.name":"mallory"}`+"\n"+
			`{"app.action":"sudo","app.attempts":2,"app.admin":true,"user.name":"bob"}`+"\n"), 0o600))
	path := writeRules(t, `
- rule: Repeated sudo attempts
  events: [""]
  condition: >
    log.file.name == "auth.jsonl" && app.action == "sudo" && app.attempts > 3 && app.admin
  severity: medium
  output: "%{user.name} tried sudo %{app.attempts} times"
`)
	sink := new(consumertest.LogsSink)
	cfg := testCfg(ModeBoth, path)
	proc := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)

	f := filelogreceiver.NewFactory()
	fcfg := f.CreateDefaultConfig().(*filelogreceiver.FileLogConfig)
	fcfg.InputConfig.Include = []string{logPath}
	fcfg.InputConfig.StartAt = "beginning"
	fcfg.InputConfig.PollInterval = 10 * time.Millisecond
	fcfg.Operators = []operator.Config{{Builder: json.NewConfig()}}
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), fcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })

	require.Eventually(t, func() bool {
		events, _ := records(sink)
		return len(events) == 3
	}, 10*time.Second, 10*time.Millisecond, "the three lines pass through")
	_, alerts := records(sink)
	require.Len(t, alerts, 1, "mallory only")
	assert.Equal(t, "mallory tried sudo 5 times", alerts[0].Body().Str())
	assert.Equal(t, "auth.jsonl", attr(alerts[0], "log.file.name"))
}
