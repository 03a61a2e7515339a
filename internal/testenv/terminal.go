package testenv

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Terminal is a program running on a pseudo-terminal of its own, as an
// interactive shell runs for a person typing into it.
type Terminal struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

// StartTerminal starts cmd with a new pseudo-terminal as its stdin, stdout,
// stderr and controlling terminal, in a session of its own. What cmd's
// SysProcAttr already says (a cgroup, say) is kept. The process is killed
// when the test ends.
func StartTerminal(tb testing.TB, cmd *exec.Cmd) *Terminal {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("opening /dev/ptmx: %v (is devpts mounted?)", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatalf("numbering the pseudo-terminal: %v", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatalf("opening the pseudo-terminal's slave: %v", err)
	}
	defer slave.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // the child's stdin
	if err := cmd.Start(); err != nil {
		master.Close()
		tb.Fatalf("starting %s on a terminal: %v", cmd.Path, err)
	}
	t := &Terminal{cmd: cmd, master: master, done: make(chan struct{})}
	// Read what the program writes, or it blocks once the terminal's buffer is full.
	go func() {
		defer close(t.done)
		_, _ = io.Copy(t, master)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		master.Close()
		<-t.done
	})
	return t
}

// Write appends what the program wrote to the output (io.Writer for the reader).
func (t *Terminal) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.Write(b)
}

// Type sends line and a newline, as typed at the keyboard.
func (t *Terminal) Type(line string) error {
	_, err := t.master.Write([]byte(line + "\n"))
	return err
}

// Output is what the program has written so far.
func (t *Terminal) Output() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.String()
}

// Pid is the program's process id.
func (t *Terminal) Pid() int { return t.cmd.Process.Pid }
