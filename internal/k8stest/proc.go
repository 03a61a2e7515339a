package k8stest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// Process is one child process whose output goes to <dir>/<name>.stdout and .stderr:
// the control plane's here, and the node's in internal/k8snode.
type Process struct {
	name       string
	cmd        *exec.Cmd
	stdoutPath string
	stderrPath string
	done       chan struct{} // closed when the process has exited
	err        error         // from Wait, valid once done is closed
}

// StartProcess starts bin in its own process group and registers a cleanup that stops
// the whole group and, if the test failed, logs the tail of its output.
func StartProcess(t testing.TB, dir, name, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{
		name:       name,
		stdoutPath: filepath.Join(dir, name+".stdout"),
		stderrPath: filepath.Join(dir, name+".stderr"),
		done:       make(chan struct{}),
	}
	stdout, err := os.Create(p.stdoutPath)
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	stderr, err := os.Create(p.stderrPath)
	if err != nil {
		stdout.Close()
		t.Fatalf("k8stest: %v", err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("k8stest: start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			for _, path := range []string{p.stdoutPath, p.stderrPath} {
				if out := tail(path, 50); out != "" {
					t.Logf("k8stest: %s (last 50 lines):\n%s", filepath.Base(path), out)
				}
			}
		}
	})
	return p
}

// exited reports whether the process is gone, with how it ended.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, fmt.Errorf("%s exited", p.name)
		}
		return true, fmt.Errorf("%s: %w", p.name, p.err)
	default:
		return false, nil
	}
}

// stop signals the process group, not just the leader, so anything it forked goes
// too: SIGTERM, up to stopGrace for the leader to exit, then SIGKILL for whatever of
// the group is left (the leader exiting does not take its children with it).
//
// Once the leader is reaped its PID may be reused: a second Stop does nothing.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}

// Pid is the process's (and its group's) id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stderr returns the last n lines the process wrote to stderr.
func (p *Process) Stderr(n int) string { return tail(p.stderrPath, n) }

// tail returns the last n lines of a file, or a note saying why it cannot.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		lines = append(lines, "(reading: "+err.Error()+")")
	}
	return strings.Join(lines, "\n")
}
