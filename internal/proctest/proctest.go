// Package proctest starts real processes for tests of what acts on them (a
// kill), names them as the ebpf receiver does (pid and start time), and
// makes the kernel reuse a pid. Test code only.
package proctest // import "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/proctest"

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Tick is /proc's unit of start times (USER_HZ is 100): processes started
// within one tick look alike there.
const Tick = 10 * time.Millisecond

// Sleeper starts a process that lives until killed or the test ends.
func Sleeper(tb testing.TB) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command("/bin/sleep", "60")
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// StartTime is a running process's start as the ebpf receiver reports it
// (k8ssec.process.start_time, CLOCK_BOOTTIME ns), from /proc/<pid>/stat's
// ticks: a few ms into the tick, as a real start time would be.
func StartTime(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(tb, err)
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:])) // past "pid (comm) "
	ticks, err := strconv.ParseInt(fields[19], 10, 64)                  // field 22, starttime
	require.NoError(tb, err)
	return ticks*int64(Tick) + int64(3*time.Millisecond)
}

// Alive reports whether pid runs: it exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state := b[bytes.LastIndexByte(b, ')')+2]
	return state != 'Z' && state != 'X'
}

// KilledBy waits for cmd to end and returns the signal that ended it, 0 for
// an exit; it fails the test if cmd still runs after 10 s.
func KilledBy(tb testing.TB, cmd *exec.Cmd) syscall.Signal {
	tb.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("pid %d still runs", cmd.Process.Pid)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return 0
	}
	return ws.Signal()
}

// StartWithPid starts a sleep that gets pid, which must be free: the kernel
// hands out ns_last_pid+1 next, unless another fork on the machine (or a
// thread the Go runtime starts) takes it first, hence the attempts. Needs
// root (CAP_SYS_ADMIN over the PID namespace).
func StartWithPid(tb testing.TB, pid int) *exec.Cmd {
	tb.Helper()
	const attempts = 200
	for range attempts {
		require.NoError(tb, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0))
		cmd := exec.Command("/bin/sleep", "60")
		require.NoError(tb, cmd.Start())
		if cmd.Process.Pid == pid {
			tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return cmd
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	tb.Fatalf("pid %d was not reused in %d attempts", pid, attempts)
	return nil
}

// DeadPid starts a process, notes its start time, kills and reaps it, and
// waits past its start's tick: the pid is then free, and a process that gets
// it next starts in a later tick, as any reuse but a deliberate one does.
func DeadPid(tb testing.TB) (pid int, startTime int64) {
	tb.Helper()
	a := exec.Command("/bin/sleep", "60")
	require.NoError(tb, a.Start())
	pid, startTime = a.Process.Pid, StartTime(tb, a.Process.Pid)
	require.NoError(tb, a.Process.Kill())
	_ = a.Wait()
	time.Sleep(2 * Tick)
	return pid, startTime
}
