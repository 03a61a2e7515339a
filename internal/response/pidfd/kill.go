// Package pidfd kills a process named by its pid and start time, safely
// against PID reuse: the pidfd is opened first, the start time checked after,
// and the signal sent through the pidfd, which pins the process it was opened
// on. If the pid named another process at the open, the check sees that
// process's start time and nothing is sent; if it named ours, a reuse after
// the check cannot be hit.
package pidfd // import "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response/pidfd"

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
)

// nsPerTick converts a CLOCK_BOOTTIME start time to /proc/<pid>/stat's
// starttime: USER_HZ is 100 on Linux whatever CONFIG_HZ is, and the kernel
// divides, so a process given the pid within the 10 ms tick its first holder
// started in looks like that one. Pids are handed out in order, again only
// after pid_max others; only a holder of CAP_SYS_ADMIN over the node's PID
// namespace can choose one (ns_last_pid, clone3's set_tid) that fast.
const nsPerTick = int64(time.Second / 100)

// Killer kills processes of this host through /proc and pidfds; the pids are
// those of its PID namespace (the node's, with hostPID).
type Killer struct{}

var _ response.Killer = Killer{}

// Kill implements response.Killer.
func (Killer) Kill(t response.Target, dryRun bool) response.Outcome {
	if t.Pid <= 0 || t.StartTime <= 0 {
		return response.Outcome{Result: response.Error, Err: fmt.Errorf("no process to kill: pid %d, start time %d", t.Pid, t.StartTime)}
	}
	fd, err := unix.PidfdOpen(t.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return response.Outcome{Result: response.Gone}
	}
	if err != nil {
		return response.Outcome{Result: response.Error, Err: fmt.Errorf("pidfd_open(%d): %w", t.Pid, err)}
	}
	defer unix.Close(fd)

	start, state, err := stat(t.Pid)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) { // exited and reaped since the open
		return response.Outcome{Result: response.Gone}
	}
	if err != nil {
		return response.Outcome{Result: response.Error, Err: err}
	}
	if start != t.StartTime/nsPerTick {
		return response.Outcome{Result: response.PidReused}
	}
	if state == 'Z' || state == 'X' { // exited, not yet reaped: a signal would do nothing
		return response.Outcome{Result: response.Gone}
	}
	if dryRun {
		return response.Outcome{Result: response.DryRun, At: time.Now()}
	}
	err = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	at := time.Now()
	if errors.Is(err, unix.ESRCH) {
		return response.Outcome{Result: response.Gone}
	}
	if err != nil {
		return response.Outcome{Result: response.Error, Err: fmt.Errorf("pidfd_send_signal(%d, SIGKILL): %w", t.Pid, err)}
	}
	return response.Outcome{Result: response.Killed, At: at}
}

// stat reads a process's start time (USER_HZ ticks since boot) and state
// from /proc/<pid>/stat.
func stat(pid int) (startTicks int64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := bytes.Fields(b[i+2:])
	const startField = 22 - 3 // field 22 (starttime), counted from field 3 (state)
	if len(fields) <= startField {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields, want more than %d", pid, len(fields)+2, startField+2)
	}
	startTicks, err = strconv.ParseInt(string(fields[startField]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return startTicks, fields[0][0], nil
}
