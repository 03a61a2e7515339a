package securityrulesprocessor

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/proctest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response/pidfd"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadatatest"
)

// onAgent registers the Killer the ebpf receiver registers at Start, for the
// test: this collector's pids are then the node's.
func onAgent(t *testing.T) {
	require.Nil(t, response.Lookup(), "a Killer is left registered by another test")
	t.Cleanup(response.Register(pidfd.Killer{}))
}

// execOf is a process.exec event of a running process as the ebpf receiver
// writes it: the process, with its pid and start time, on the resource.
func execOf(pid int, startTime int64) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutInt("process.pid", int64(pid))
	if startTime != 0 {
		res.PutInt("k8ssec.process.start_time", startTime)
	}
	res.PutStr("process.executable.path", "/bin/sleep")
	res.PutStr("process.executable.name", "sleep")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("process.exec")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.Body().SetStr("/bin/sleep 60")
	return ld
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	return tt
}

func execOfRunning(t *testing.T, cmd *exec.Cmd) plog.Logs {
	return execOf(cmd.Process.Pid, proctest.StartTime(t, cmd.Process.Pid))
}

// respond runs the kill rules over ld in a processor of the response mode
// and returns its alerts by rule.
func respond(t *testing.T, tt *componenttest.Telemetry, mode string, ld plog.Logs) map[string]plog.LogRecord {
	t.Helper()
	cfg := testCfg(ModeAlerts, "testdata/kill_rules.yaml")
	cfg.Response.Mode = mode
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, tt, cfg, sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	_, alerts := records(sink)
	byRule := map[string]plog.LogRecord{}
	for _, a := range alerts {
		byRule[attr(a, "security_rule.name").(string)] = a
	}
	require.Len(t, byRule, 3)
	return byRule
}

func assertResponses(t *testing.T, tt *componenttest.Telemetry, result response.Result) {
	t.Helper()
	metadatatest.AssertEqualProcessorSecurityRulesResponses(t, tt, []metricdata.DataPoint[int64]{{Value: 1,
		Attributes: attribute.NewSet(attribute.String("k8ssec.response.action", "kill"), attribute.String("k8ssec.response.result", string(result)))}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestKillActionKillsTheProcess(t *testing.T) {
	onAgent(t)
	tt := newTelemetry(t)
	cmd := proctest.Sleeper(t)
	alerts := respond(t, tt, ResponseEnforce, execOfRunning(t, cmd))

	assert.Equal(t, syscall.SIGKILL, proctest.KilledBy(t, cmd))
	// Two kill rules matched: one kill, which both alerts report.
	for _, rule := range []string{"Sleep started", "Sleep started, again"} {
		a := alerts[rule]
		assert.Equal(t, "kill", attr(a, "k8ssec.response.action"), rule)
		assert.Equal(t, "killed", attr(a, "k8ssec.response.result"), rule)
		assert.Equal(t, int64(cmd.Process.Pid), attr(a, "k8ssec.response.target_pid"), rule)
		latency, ok := attr(a, "k8ssec.response.latency").(float64)
		require.True(t, ok, "%s: latency in seconds, a double", rule)
		assert.Greater(t, latency, 0.0, "the signal follows the event")
	}
	assert.Nil(t, attr(alerts["Sleep started, alert only"], "k8ssec.response.result"), "a rule without an action")
	assertResponses(t, tt, response.Killed)
}

func TestDryRunReportsWhatItWouldKill(t *testing.T) {
	onAgent(t)
	tt := newTelemetry(t)
	cmd := proctest.Sleeper(t)
	alerts := respond(t, tt, createDefaultConfig().Response.Mode, execOfRunning(t, cmd))

	a := alerts["Sleep started"]
	assert.Equal(t, "dry_run", attr(a, "k8ssec.response.result"))
	assert.Equal(t, int64(cmd.Process.Pid), attr(a, "k8ssec.response.target_pid"))
	assert.IsType(t, 0.0, attr(a, "k8ssec.response.latency"), "when the signal would have been sent")
	time.Sleep(100 * time.Millisecond)
	assert.True(t, proctest.Alive(cmd.Process.Pid), "a dry run kills nothing")
	assertResponses(t, tt, response.DryRun)
}

// TestKillSparesAReusedPid: the event's process died and its pid went to
// another; the other must live.
func TestKillSparesAReusedPid(t *testing.T) {
	testenv.RequireRoot(t, "reusing a pid (writing /proc/sys/kernel/ns_last_pid)")
	onAgent(t)
	tt := newTelemetry(t)
	pid, start := proctest.DeadPid(t)
	reuser := proctest.StartWithPid(t, pid)
	alerts := respond(t, tt, ResponseEnforce, execOf(pid, start))

	a := alerts["Sleep started"]
	assert.Equal(t, "pid_reused", attr(a, "k8ssec.response.result"))
	assert.Equal(t, int64(pid), attr(a, "k8ssec.response.target_pid"))
	assert.Nil(t, attr(a, "k8ssec.response.latency"), "nothing was sent")
	time.Sleep(100 * time.Millisecond)
	assert.True(t, proctest.Alive(reuser.Process.Pid), "the process that reuses the pid lives")
	assertResponses(t, tt, response.PidReused)
}

// TestKillUnavailableOnAGateway: no ebpf receiver in the collector, so no
// Killer: its pids would be other nodes'. The alert says so.
func TestKillUnavailableOnAGateway(t *testing.T) {
	require.Nil(t, response.Lookup())
	tt := newTelemetry(t)
	cmd := proctest.Sleeper(t) // a process of this machine, which the gateway must not touch
	alerts := respond(t, tt, ResponseEnforce, execOfRunning(t, cmd))

	a := alerts["Sleep started"]
	assert.Equal(t, "kill", attr(a, "k8ssec.response.action"))
	assert.Equal(t, "unavailable", attr(a, "k8ssec.response.result"))
	assert.Nil(t, attr(a, "k8ssec.response.latency"))
	assert.True(t, proctest.Alive(cmd.Process.Pid))
	assertResponses(t, tt, response.Unavailable)
}

func TestKillOfAnEventWithoutItsProcess(t *testing.T) {
	onAgent(t)
	tt := newTelemetry(t)
	cmd := proctest.Sleeper(t)
	alerts := respond(t, tt, ResponseEnforce, execOf(cmd.Process.Pid, 0)) // no start time: no proof of identity

	a := alerts["Sleep started"]
	assert.Equal(t, "error", attr(a, "k8ssec.response.result"))
	assert.Contains(t, attr(a, "k8ssec.response.error"), "k8ssec.process.start_time")
	assert.True(t, proctest.Alive(cmd.Process.Pid))
	assertResponses(t, tt, response.Error)
}

func TestResponseOff(t *testing.T) {
	onAgent(t)
	tt := newTelemetry(t)
	cmd := proctest.Sleeper(t)
	alerts := respond(t, tt, ResponseOff, execOfRunning(t, cmd))

	assert.Nil(t, attr(alerts["Sleep started"], "k8ssec.response.result"))
	assert.True(t, proctest.Alive(cmd.Process.Pid))
}
