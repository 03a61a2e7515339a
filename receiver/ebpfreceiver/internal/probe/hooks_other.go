//go:build !amd64

package probe

import "errors"

var errNoHooksHere = errors.New("the kernel-function hooks are built for x86-64 only")

// hookObjects: nothing is loaded on this architecture.
type hookObjects struct{}

func (h *hookObjects) Close() error { return nil }

// loadHooks: kprobe.bpf.c is compiled for x86-64 only.
func (p *Probe) loadHooks(cfg Config) {
	if p.Hooks == nil {
		p.Hooks = map[Hook]HookStatus{}
	}
	p.unavailableHooks(cfg, errNoHooksHere)
}

// HookCalls is 0: no hook runs on this architecture.
func (p *Probe) HookCalls(Hook) (uint64, error) { return 0, nil }

// EscalationKillCount is 0: no hook runs on this architecture.
func (p *Probe) EscalationKillCount() (uint64, error) { return 0, nil }
