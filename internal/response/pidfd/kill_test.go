package pidfd

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// sleeper starts a real process that lives until killed (or the test ends).
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "60")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// targetOf names a running process as the ebpf receiver would: its pid and
// its start time in CLOCK_BOOTTIME ns, here from /proc/<pid>/stat's ticks (a
// few ms into the tick, as a real start time would be).
func targetOf(t *testing.T, pid int) response.Target {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ticks, err := strconv.ParseInt(fields[19], 10, 64) // field 22, starttime
	require.NoError(t, err)
	return response.Target{Pid: pid, StartTime: ticks*int64(10*time.Millisecond) + int64(3*time.Millisecond)}
}

// killedBy waits for cmd and returns the signal that ended it (0 for an exit).
func killedBy(t *testing.T, cmd *exec.Cmd) syscall.Signal {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d still runs", cmd.Process.Pid)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state := b[bytes.LastIndexByte(b, ')')+2]
	return state != 'Z' && state != 'X'
}

func TestKillKillsTheNamedProcess(t *testing.T) {
	cmd := sleeper(t)
	before := time.Now()
	out := Killer{}.Kill(targetOf(t, cmd.Process.Pid), false)
	require.NoError(t, out.Err)
	assert.Equal(t, response.Killed, out.Result)
	assert.False(t, out.At.Before(before), "At is when the signal was sent")
	assert.Equal(t, syscall.SIGKILL, killedBy(t, cmd))
}

func TestDryRunKillsNothing(t *testing.T) {
	cmd := sleeper(t)
	out := Killer{}.Kill(targetOf(t, cmd.Process.Pid), true)
	assert.Equal(t, response.DryRun, out.Result)
	assert.False(t, out.At.IsZero())
	time.Sleep(100 * time.Millisecond)
	assert.True(t, alive(cmd.Process.Pid), "the process survives a dry run")
}

func TestExitedProcessIsGone(t *testing.T) {
	// Exited and reaped: the pid names nothing.
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Start())
	target := targetOf(t, cmd.Process.Pid)
	require.NoError(t, cmd.Wait())
	assert.Equal(t, response.Gone, Killer{}.Kill(target, false).Result)

	// Exited, not reaped (a zombie): the pid still names it, but a signal
	// would do nothing.
	zombie := sleeper(t)
	target = targetOf(t, zombie.Process.Pid)
	require.NoError(t, syscall.Kill(zombie.Process.Pid, syscall.SIGTERM))
	require.Eventually(t, func() bool { return !alive(zombie.Process.Pid) }, 5*time.Second, time.Millisecond)
	assert.Equal(t, response.Gone, Killer{}.Kill(target, false).Result)
	assert.Equal(t, syscall.SIGTERM, killedBy(t, zombie), "ours was not the signal that ended it")
}

func TestAnotherStartTimeIsNotKilled(t *testing.T) {
	cmd := sleeper(t)
	target := targetOf(t, cmd.Process.Pid)
	target.StartTime -= int64(time.Second) // a process that had this pid before
	assert.Equal(t, response.PidReused, Killer{}.Kill(target, false).Result)
	assert.True(t, alive(cmd.Process.Pid))
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
	a := exec.Command("/bin/sleep", "60")
	require.NoError(t, a.Start())
	deadA := targetOf(t, a.Process.Pid)
	require.NoError(t, a.Process.Kill())
	_ = a.Wait()
	// /proc's start times are 10 ms ticks: a process started within A's
	// tick would look like A (the limit the package comment states).
	time.Sleep(2 * time.Duration(nsPerTick))

	b := startWithPid(t, deadA.Pid)
	assert.Equal(t, response.PidReused, Killer{}.Kill(deadA, false).Result)
	time.Sleep(100 * time.Millisecond)
	assert.True(t, alive(b.Process.Pid), "the process that reuses the pid survives")
	assert.Equal(t, response.Killed, Killer{}.Kill(targetOf(t, b.Process.Pid), false).Result, "B itself can be killed")
	assert.Equal(t, syscall.SIGKILL, killedBy(t, b))
}

// startWithPid starts a sleep that gets pid: the kernel hands out
// ns_last_pid+1 next, unless another fork on the machine (or a thread the Go
// runtime starts) takes it first, hence the attempts.
func startWithPid(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for range 200 {
		require.NoError(t, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0))
		cmd := exec.Command("/bin/sleep", "60")
		require.NoError(t, cmd.Start())
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return cmd
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatalf("pid %d was not reused in 200 attempts", pid)
	return nil
}
