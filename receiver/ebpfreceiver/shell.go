package ebpfreceiver

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// hostShells are where the host's bash is probed at start: the agent's own
// root, and the host's through /proc/1/root when the agent runs in a
// container with the host's pid namespace (not when it shares the host's
// mount namespace: the same files, and /proc/1/root may not be readable). The
// same file under two names is probed once.
func hostShells() []string {
	shells := []string{"/bin/bash", "/usr/bin/bash"}
	if root := probe.HostRoot(); root != "" {
		shells = append(shells, root+"/bin/bash", root+"/usr/bin/bash")
	}
	return shells
}

// shellExec is a process that exec'd a bash: its binary may be new.
type shellExec struct {
	pid      uint32
	filename string
}

// shellQueueLen bounds the execs of bash waiting for the prober; more are
// dropped (the next exec of the same binary finds it).
const shellQueueLen = 64

func (r *ebpfReceiver) startShellProber() {
	r.shellQueue = make(chan shellExec, shellQueueLen)
	r.shellWG.Add(1)
	go func() {
		defer r.shellWG.Done()
		for x := range r.shellQueue {
			r.attachShell(x)
		}
	}()
}

// probeShell hands an exec of bash to the prober without waiting: the reader
// never stalls on an ELF read.
func (r *ebpfReceiver) probeShell(pid uint32, filename string) {
	select {
	case r.shellQueue <- shellExec{pid, filename}:
	default:
	}
}

func (r *ebpfReceiver) attachShell(x shellExec) {
	ok, err := r.probe.AttachShellOf(x.pid, x.filename)
	switch {
	case ok:
		r.set.Logger.Info("ebpf receiver: shell commands: probing another bash binary", zap.String("path", x.filename),
			zap.Uint32("found_by_pid", x.pid))
	case errors.Is(err, probe.ErrShellLimit):
		if !r.shellWarned {
			r.shellWarned = true
			r.set.Logger.Warn("ebpf receiver: shell commands: too many distinct bash binaries; the commands of new ones are not reported", zap.Error(err))
		}
	case errors.Is(err, os.ErrNotExist):
		// the process is gone; its binary is found at the next exec
	case err != nil:
		r.set.Logger.Warn("ebpf receiver: shell commands: a bash binary cannot be probed", zap.Error(err))
	}
}

// resolveUprobes finds each configured uprobe's binary (a library by name).
func (c *Config) resolveUprobes() ([]probe.Uprobe, error) {
	out := make([]probe.Uprobe, 0, len(c.Uprobes))
	for i, u := range c.Uprobes {
		path, err := probe.ResolveBinary(u.Binary)
		if err != nil {
			return nil, fmt.Errorf("uprobes[%d] (symbol %q): %w", i, u.Symbol, err)
		}
		args := make([]probe.UprobeArg, len(u.Args))
		for j, a := range u.Args {
			args[j] = uprobeArgTypes[a]
		}
		out = append(out, probe.Uprobe{Binary: path, Symbol: u.Symbol, Return: u.Return, Args: args})
	}
	return out, nil
}
