//go:build amd64

package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// hookObjects are the hook object's own maps and its attached programs.
type hookObjects struct {
	maps  map[string]*ebpf.Map
	progs map[Hook]*ebpf.Program
}

func (h *hookObjects) Close() error {
	var errs []error
	for _, p := range h.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range h.maps {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// hookFunctions are the kernel functions hooked, and each hook's programs by mode.
var hookFunctions = map[Hook]struct {
	symbol string
	progs  map[HookMode]string
}{
	HookCommitCreds:      {"commit_creds", map[HookMode]string{HookFentry: "fentry_commit_creds", HookKprobe: "kprobe_commit_creds"}},
	HookSecurityFileOpen: {"security_file_open", map[HookMode]string{HookFentry: "fentry_security_file_open", HookKprobe: "kprobe_security_file_open"}},
	HookTCPConnect:       {"tcp_connect", map[HookMode]string{HookFentry: "fentry_tcp_connect", HookKprobe: "kprobe_tcp_connect"}},
	HookInetCskAccept:    {"inet_csk_accept", map[HookMode]string{HookFentry: "fexit_inet_csk_accept", HookKprobe: "kretprobe_inet_csk_accept"}},
}

// Values of granting_syscalls (GRANTS, GRANTS_EXEC in kprobe.bpf.c).
const (
	grants     uint8 = 1
	grantsExec uint8 = 2
)

// compatKey marks a 32-bit (ia32) syscall number in the syscall maps.
const compatKey = 1 << 31

// grantingSyscalls may give a task uid 0: setuid & co (what the caller may),
// and execve (what a set-uid executable's owner is). The second set is the
// 32-bit table's (arch/x86/entry/syscalls/syscall_32.tbl), 16- and 32-bit ids.
var grantingSyscalls = map[uint32]uint8{
	unix.SYS_SETUID: grants, unix.SYS_SETREUID: grants, unix.SYS_SETRESUID: grants, unix.SYS_SETFSUID: grants,
	unix.SYS_SETGID: grants, unix.SYS_SETREGID: grants, unix.SYS_SETRESGID: grants, unix.SYS_SETFSGID: grants,
	unix.SYS_CAPSET: grants, unix.SYS_EXECVE: grantsExec, unix.SYS_EXECVEAT: grantsExec,

	compatKey | 23: grants, compatKey | 70: grants, compatKey | 164: grants, compatKey | 138: grants, // setuid, setreuid, setresuid, setfsuid
	compatKey | 46: grants, compatKey | 71: grants, compatKey | 170: grants, compatKey | 139: grants, // setgid, setregid, setresgid, setfsgid
	compatKey | 213: grants, compatKey | 203: grants, compatKey | 208: grants, compatKey | 215: grants, // the 32-bit-id variants
	compatKey | 214: grants, compatKey | 204: grants, compatKey | 210: grants, compatKey | 216: grants,
	compatKey | 185: grants, compatKey | 11: grantsExec, compatKey | 358: grantsExec, // capset, execve, execveat
}

// tracedSyscalls are, per syscall, the hooks (a 1 << Hook mask) whose
// records the tracepoint objects send for it already: inside it those hooks
// send nothing. execve's opens (the executable, its interpreter) are the exec
// record's.
func (p *Probe) tracedSyscalls(cfg Config) map[uint32]uint8 {
	traced := map[uint32]uint8{unix.SYS_EXECVE: 1 << HookSecurityFileOpen, unix.SYS_EXECVEAT: 1 << HookSecurityFileOpen}
	add := func(loaded bool, h Hook, names map[string]uint32) {
		if !loaded {
			return
		}
		for name, nr := range names {
			if !slices.Contains(p.Missing, "syscalls/sys_enter_"+name) {
				traced[nr] |= 1 << h
			}
		}
	}
	add(p.file != nil && slices.Contains(cfg.FileKinds, KindFileOpen), HookSecurityFileOpen, map[string]uint32{
		"open": unix.SYS_OPEN, "openat": unix.SYS_OPENAT, "openat2": unix.SYS_OPENAT2, "creat": unix.SYS_CREAT})
	add(p.net != nil && slices.Contains(cfg.NetKinds, KindNetConnect), HookTCPConnect, map[string]uint32{"connect": unix.SYS_CONNECT})
	add(p.net != nil && slices.Contains(cfg.NetKinds, KindNetAccept), HookInetCskAccept,
		map[string]uint32{"accept": unix.SYS_ACCEPT, "accept4": unix.SYS_ACCEPT4})
	return traced
}

// loadHooks creates the hook object's maps once, then loads and attaches each
// wanted hook's program, fentry first, kprobe next; Hooks says which ran.
func (p *Probe) loadHooks(cfg Config) {
	if p.Hooks == nil {
		p.Hooks = map[Hook]HookStatus{}
	}
	spec, err := p.hookSpec(cfg)
	if err != nil {
		p.unavailableHooks(cfg, err)
		return
	}
	repl, err := p.createHookMaps(spec, cfg)
	if err != nil {
		p.unavailableHooks(cfg, err)
		return
	}
	modes := cfg.hookModes
	if len(modes) == 0 {
		modes = defaultHookModes
	}
	for _, h := range cfg.wantedHooks() {
		var errs []error
		st := HookStatus{Mode: HookUnavailable}
		for _, mode := range modes {
			if err := p.attachHook(spec, repl, h, mode); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", mode, err))
				continue
			}
			st.Mode = mode
			break
		}
		if st.Mode == HookUnavailable {
			st.Err = errors.Join(errs...)
		}
		p.Hooks[h] = st
	}
}

func (p *Probe) hookSpec(cfg Config) (*ebpf.CollectionSpec, error) {
	spec, err := loadKprobe()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded hook object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return nil, err
	}
	if cfg.KillOnEscalation {
		if err := spec.Variables[kprobeVarCfgKillEscalation].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("setting kill_on_escalation: %w", err)
		}
	}
	if len(cfg.Ports) > 0 {
		if err := spec.Variables[kprobeVarCfgPortFilter].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("setting the port filter: %w", err)
		}
	}
	return spec, nil
}

// createHookMaps creates the object's own maps and fills them; it returns
// every map the programs use, the shared ones included, by name.
func (p *Probe) createHookMaps(spec *ebpf.CollectionSpec, cfg Config) (map[string]*ebpf.Map, error) {
	h := &hookObjects{maps: map[string]*ebpf.Map{}, progs: map[Hook]*ebpf.Program{}}
	p.hooks = h
	repl := p.shared.replacements()
	for name, ms := range spec.Maps {
		if strings.HasPrefix(name, ".") || repl[name] != nil {
			continue // constants (per program) and the shared maps
		}
		m, err := ebpf.NewMap(ms)
		if err != nil {
			return nil, fmt.Errorf("creating the %s map: %w", name, explainErrno(err))
		}
		h.maps[name] = m
		repl[name] = m
	}
	for nr, v := range grantingSyscalls {
		if slices.Contains(cfg.ungranted, nr) {
			continue
		}
		if err := h.maps[kprobeMapGrantingSyscalls].Put(nr, v); err != nil {
			return nil, fmt.Errorf("filling the granting syscalls: %w", err)
		}
	}
	for nr, hooks := range p.tracedSyscalls(cfg) {
		if err := h.maps[kprobeMapTracedSyscalls].Put(nr, hooks); err != nil {
			return nil, fmt.Errorf("filling the traced syscalls: %w", err)
		}
	}
	if err := fillFileFilters(cfg, h.maps[kprobeMapFilePrefixes], h.maps[kprobeMapFileInodes]); err != nil {
		return nil, err
	}
	for _, port := range cfg.Ports {
		if err := h.maps[kprobeMapPortsOfInterest].Put(port, uint8(1)); err != nil {
			return nil, fmt.Errorf("adding port %d to the ports of interest: %w", port, err)
		}
	}
	return repl, nil
}

// attachHook loads one hook's program for mode, with the object's maps, and attaches it.
func (p *Probe) attachHook(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map, h Hook, mode HookMode) error {
	fn := hookFunctions[h]
	name := fn.progs[mode]
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{MapReplacements: maps})
	if err != nil {
		return fmt.Errorf("loading %s: %w", name, err) // a verifier error's %v is its last lines
	}
	prog := coll.DetachProgram(name)
	coll.Close()
	var l link.Link
	switch mode {
	case HookFentry:
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	case HookKprobe:
		if prog.Type() == ebpf.Kprobe && strings.HasPrefix(name, "kretprobe") {
			l, err = link.Kretprobe(fn.symbol, prog, nil)
		} else {
			l, err = link.Kprobe(fn.symbol, prog, nil)
		}
	default:
		err = fmt.Errorf("unknown hook mode %q", mode)
	}
	if err != nil {
		prog.Close()
		return fmt.Errorf("attaching to %s: %w", fn.symbol, err)
	}
	p.hooks.progs[h] = prog
	p.links["hooks"] = append(p.links["hooks"], l)
	return nil
}

// HookCalls is how many times a hook's program has run since load (0 when it
// does not run): that the kernel reached the function, whatever was reported.
func (p *Probe) HookCalls(h Hook) (uint64, error) {
	if p.hooks == nil || p.hooks.maps[kprobeMapHookCalls] == nil {
		return 0, nil
	}
	return sumPerCPU(p.hooks.maps[kprobeMapHookCalls], uint32(h))
}

// EscalationKillCount is how many SIGKILLs kill_on_escalation has sent.
func (p *Probe) EscalationKillCount() (uint64, error) {
	if p.hooks == nil || p.hooks.maps[kprobeMapEscalationKills] == nil {
		return 0, nil
	}
	return sumPerCPU(p.hooks.maps[kprobeMapEscalationKills], 0)
}
