package ebpfreceiver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/proctest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
)

// The agent's pipeline, real from end to end: the kernel reports a sleep's
// exec, security_rules matches a rule with action: kill, and the kill goes
// through the Killer this receiver registered. The process dies of SIGKILL,
// and the alert says so and how long after the exec.
func TestRuleKillsTheProcessOfAKernelEvent(t *testing.T) {
	requireRoot(t)
	require.Nil(t, response.Lookup(), "a Killer is left registered by another test")
	const marker = "3617.25" // a sleep nobody else runs
	ruleFile := filepath.Join(t.TempDir(), "kill.yaml")
	require.NoError(t, os.WriteFile(ruleFile, []byte(`
- rule: Marked sleep
  events: [process.exec]
  condition: process.executable.name == "sleep" && "`+marker+`" in process.command_args
  severity: critical
  output: marked sleep %{process.pid}
  action: kill
`), 0o600))
	alerts := new(consumertest.LogsSink)
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules, pcfg.Mode, pcfg.Response.Mode = []string{ruleFile}, securityrulesprocessor.ModeAlerts, securityrulesprocessor.ResponseEnforce
	require.NoError(t, pcfg.Validate())
	proc, err := pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, alerts)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

	// The kernel's records go to the processor, and a copy to the test.
	kernel := new(consumertest.LogsSink)
	both, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		cp := plog.NewLogs()
		ld.CopyTo(cp)
		_ = kernel.ConsumeLogs(ctx, cp)
		return proc.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	rcv := startReceiver(t, newTelemetry(t), both, func(c *Config) {
		c.Events = []string{eventProcessExec, eventProcessExit}
	})
	t.Cleanup(func() { _ = rcv.Shutdown(context.Background()) }) // again, if the test stops early
	require.NotNil(t, response.Lookup(), "the receiver registered its Killer at Start")

	cmd := exec.Command("/bin/sleep", marker)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	assert.Equal(t, syscall.SIGKILL, proctest.KilledBy(t, cmd))

	var alert plog.LogRecord
	require.Eventually(t, func() bool {
		for _, ld := range alerts.AllLogs() {
			for _, e := range events(ld) {
				if e.EventName() == rules.AlertEventName {
					alert = e.LogRecord
					return true
				}
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "killed", attrOf(alert, "k8ssec.response.result"))
	assert.Equal(t, int64(cmd.Process.Pid), attrOf(alert, "k8ssec.response.target_pid"))
	latency, ok := attrOf(alert, "k8ssec.response.latency").(float64)
	require.True(t, ok, "latency in seconds")
	assert.Greater(t, latency, 0.0)
	assert.Less(t, latency, 5.0, "from the exec to the signal: the batch's wait and the rule")
	t.Logf("exec to SIGKILL: %.1f ms", latency*1000)
	exit := waitFor(t, kernel, eventProcessExit, cmd.Process.Pid)
	assert.Equal(t, int64(syscall.SIGKILL), attrMap(exit)[attrExitSignal], "the kernel saw it die of SIGKILL too")

	require.NoError(t, rcv.Shutdown(context.Background()))
	assert.Nil(t, response.Lookup(), "the Killer is withdrawn at Shutdown")
}

// Only in the node's PID namespace are the kernel's pids the collector's:
// in another, pidfd_open(pid) would name another process, or none.
func TestKillerOnlyInTheNodesPidNamespace(t *testing.T) {
	testenv.RequireRoot(t, "a process in a new PID namespace")
	assert.True(t, inInitialPidNamespace(), "the tests run in the node's PID namespace")
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=pidns")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "false\n", string(out), "a container without hostPID")
}

func attrOf(lr plog.LogRecord, name string) any {
	if v, ok := lr.Attributes().Get(name); ok {
		return v.AsRaw()
	}
	return nil
}

// The events rules.NamesProcess accepts for action: kill are this
// receiver's, all but network.tcp_state (raised in softirq, on behalf of no
// task in particular).
func TestKillableEventsAreThisReceiversOwn(t *testing.T) {
	want := slices.DeleteFunc(slices.Clone(knownEvents), func(e string) bool { return e == eventNetTCPState })
	slices.Sort(want)
	assert.Equal(t, want, rules.ProcessEvents())
}
