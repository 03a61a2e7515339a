package probe

import (
	"fmt"
	"slices"
)

// HookMode is how a kernel-function hook of bpf/kprobe.bpf.c runs.
type HookMode string

// The modes, in the loader's order of preference.
const (
	// HookFentry: fentry/fexit, a BPF trampoline (needs BTF and a kernel
	// that allows tracing programs: x86-64 5.5+).
	HookFentry HookMode = "fentry"
	// HookKprobe: kprobe/kretprobe (a kernel with CONFIG_KPROBES).
	HookKprobe HookMode = "kprobe"
	// HookUnavailable: neither loads; the hook's records are not sent (the
	// tracepoint objects run as they would without it).
	HookUnavailable HookMode = "unavailable"
)

// defaultHookModes are the modes tried, in order.
var defaultHookModes = []HookMode{HookFentry, HookKprobe}

// HookStatus is how one hook runs and, when it does not, why.
type HookStatus struct {
	Mode HookMode
	Err  error // HookUnavailable: what each mode answered
}

// wantedHooks are the hooks cfg needs: commit_creds for privilege.escalation,
// security_file_open for file.open, tcp_connect for network.connect and
// inet_csk_accept's return for network.accept.
func (cfg Config) wantedHooks() []Hook {
	var hooks []Hook
	if cfg.Escalation {
		hooks = append(hooks, HookCommitCreds)
	}
	if slices.Contains(cfg.FileKinds, KindFileOpen) {
		hooks = append(hooks, HookSecurityFileOpen)
	}
	if slices.Contains(cfg.NetKinds, KindNetConnect) {
		hooks = append(hooks, HookTCPConnect)
	}
	if slices.Contains(cfg.NetKinds, KindNetAccept) {
		hooks = append(hooks, HookInetCskAccept)
	}
	return hooks
}

// HookModes names each wanted hook's mode ("commit_creds": "fentry", …), for
// the receiver's log.
func (p *Probe) HookModes() map[string]string {
	out := make(map[string]string, len(p.Hooks))
	for h, st := range p.Hooks {
		out[h.String()] = string(st.Mode)
	}
	return out
}

// loadHookObject loads the hooks cfg wants (loadHooks, per architecture) and
// holds privilege.escalation to what the other objects are held to: asked
// for and not running, it is Unavailable; with KillOnEscalation, Load fails.
func (p *Probe) loadHookObject(cfg Config) (requested int, err error) {
	if len(cfg.wantedHooks()) == 0 {
		return 0, nil
	}
	p.loadHooks(cfg)
	if !cfg.Escalation {
		return 0, nil
	}
	st := p.Hooks[HookCommitCreds]
	if st.Mode != HookUnavailable {
		return 1, nil
	}
	if cfg.KillOnEscalation {
		return 1, fmt.Errorf("enforcement.kill_on_escalation needs the commit_creds hook (fentry or kprobe), which this kernel runs in neither mode: %w", st.Err)
	}
	p.Unavailable["escalation"] = fmt.Errorf("privilege.escalation needs the commit_creds hook (fentry or kprobe): %w", st.Err)
	return 1, nil
}

// unavailableHooks marks every wanted hook unavailable for err.
func (p *Probe) unavailableHooks(cfg Config, err error) {
	for _, h := range cfg.wantedHooks() {
		p.Hooks[h] = HookStatus{Mode: HookUnavailable, Err: err}
	}
}
