package pidfd

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/proctest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

func targetOf(t *testing.T, cmd *exec.Cmd) response.Target {
	return response.Target{Pid: cmd.Process.Pid, StartTime: proctest.StartTime(t, cmd.Process.Pid)}
}

func TestKillKillsTheNamedProcess(t *testing.T) {
	cmd := proctest.Sleeper(t)
	before := time.Now()
	out := Killer{}.Kill(targetOf(t, cmd), false)
	require.NoError(t, out.Err)
	assert.Equal(t, response.Killed, out.Result)
	assert.False(t, out.At.Before(before), "At is when the signal was sent")
	assert.Equal(t, syscall.SIGKILL, proctest.KilledBy(t, cmd))
}

func TestDryRunKillsNothing(t *testing.T) {
	cmd := proctest.Sleeper(t)
	out := Killer{}.Kill(targetOf(t, cmd), true)
	assert.Equal(t, response.DryRun, out.Result)
	assert.False(t, out.At.IsZero())
	time.Sleep(100 * time.Millisecond)
	assert.True(t, proctest.Alive(cmd.Process.Pid), "the process survives a dry run")
}

func TestExitedProcessIsGone(t *testing.T) {
	// Exited and reaped: the pid names nothing.
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Start())
	target := targetOf(t, cmd)
	require.NoError(t, cmd.Wait())
	assert.Equal(t, response.Gone, Killer{}.Kill(target, false).Result)

	// Exited, not reaped (a zombie): the pid still names it, but a signal
	// would do nothing.
	zombie := proctest.Sleeper(t)
	target = targetOf(t, zombie)
	require.NoError(t, syscall.Kill(zombie.Process.Pid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return !proctest.Alive(zombie.Process.Pid) }, 5*time.Second, time.Millisecond)
	assert.Equal(t, response.Gone, Killer{}.Kill(target, false).Result)
	assert.Equal(t, syscall.SIGTERM, proctest.KilledBy(t, zombie), "ours was not the signal that ended it")
}

func TestAnotherStartTimeIsNotKilled(t *testing.T) {
	cmd := proctest.Sleeper(t)
	target := targetOf(t, cmd)
	target.StartTime -= int64(time.Second) // a process that had this pid before
	assert.Equal(t, response.PidReused, Killer{}.Kill(target, false).Result)
	assert.True(t, proctest.Alive(cmd.Process.Pid))
}

func TestNoTarget(t *testing.T) {
	out := Killer{}.Kill(response.Target{Pid: 0, StartTime: 1}, false)
	assert.Equal(t, response.Error, out.Result)
	assert.ErrorContains(t, out.Err, "no process to kill")
}

// TestReusedPidIsNotKilled makes the kernel give a dead process's pid to a new
// one (ns_last_pid), then asks to kill the dead one: the new one must live.
func TestReusedPidIsNotKilled(t *testing.T) {
	testenv.RequireRoot(t, "reusing a pid (writing /proc/sys/kernel/ns_last_pid)")
	pid, start := proctest.DeadPid(t)
	b := proctest.StartWithPid(t, pid)

	assert.Equal(t, response.PidReused, Killer{}.Kill(response.Target{Pid: pid, StartTime: start}, false).Result)
	time.Sleep(100 * time.Millisecond)
	assert.True(t, proctest.Alive(pid), "the process that reuses the pid survives")
	assert.Equal(t, response.Killed, Killer{}.Kill(targetOf(t, b), false).Result, "it can be killed by its own name")
	assert.Equal(t, syscall.SIGKILL, proctest.KilledBy(t, b))
}
