package probe

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Limits of the compiled programs (bpf/events.h).
const (
	// MaxArgsCap is the largest MaxArgs the exec program honours.
	MaxArgsCap = 128
	// MaxExecArgBytes is how many bytes of argv an exec record carries at most.
	MaxExecArgBytes = 4096
	// CommLen is the kernel's comm size, NUL included.
	CommLen = 16
	// ExecFilenameMax is the size of an enforcement path key, NUL included:
	// kill paths are at most ExecFilenameMax-1 bytes.
	ExecFilenameMax = 256
	// MaxEnforceEntries bounds KillPaths, KillComms and DenyExecPaths (the
	// maps' max_entries, EXEC_POLICY_MAX_ENTRIES).
	MaxEnforceEntries = 16384
)

const kernelBTF = "/sys/kernel/btf/vmlinux"

// Config is what the programs are loaded with.
type Config struct {
	// RingBufferSize is the ring buffer's size in bytes: a power of two and a
	// multiple of the page size.
	RingBufferSize int
	// MaxArgs is how many argv entries an exec record keeps (1..MaxArgsCap).
	MaxArgs int
	// IgnoreComms are task names whose events the kernel drops. Names are
	// matched on their first 15 bytes, as the kernel keeps them.
	IgnoreComms []string
	// CgroupPath, when set, is a cgroup v2 directory: only tasks in it or
	// below it are reported.
	CgroupPath string
	// SkipExec, SkipExit and SkipFork leave a program loaded but not
	// attached; with all three, the process object is not loaded.
	SkipExec, SkipExit, SkipFork bool
	// ForkCloneParentOnly, with SkipFork, still attaches the fork program but
	// reports only the forks whose child's parent is not the forker
	// (CLONE_PARENT: runc's init stages): their executable is the forker's,
	// which the child's parent does not tell.
	ForkCloneParentOnly bool
	// DenyExecPaths are executables whose exec BPF LSM refuses (EPERM), named
	// as KillPaths are (bpf/lsm.bpf.c). Needs a kernel running BPF LSM; Load
	// fails without it.
	DenyExecPaths []string
	// FileKinds are the file event kinds to report (KindFileOpen, …); none:
	// the file object is not loaded.
	FileKinds []Kind
	// FilePrefixes are the absolute paths whose files (the directory itself
	// and everything below it) file events report.
	FilePrefixes []string

	// NetKinds are the network object's event kinds to report (network.*
	// and KindFdDup); none: the network object is not loaded.
	NetKinds []Kind
	// Ports, when set, keep only network events on these ports (remote for
	// connect, local for bind, listen and accept, either for tcp_state).
	Ports []uint16

	// PrivKinds are the privilege and isolation event kinds to report
	// (KindPrivSetuid … KindMemfdCreate); none: the object is not loaded.
	PrivKinds []Kind

	// KillPaths and KillComms are enforcement: an exec that passes the
	// filters (IgnoreComms, CgroupPath) of an executable KillPaths names (by
	// its file's inode, taken in the host's mount namespace at load, or by
	// the path the kernel resolved: policy.go), or whose new comm (first 15
	// bytes) is in KillComms, is sent SIGKILL from the exec program, before
	// its first user-space instruction; its exec record has FlagKilledPath
	// (and FlagByFile when the inode matched) or FlagKilledComm. Needs the
	// exec program: Load fails when it cannot run.
	KillPaths, KillComms []string
	// ContainerPaths: KillPaths and DenyExecPaths also name the file at that
	// path as every container sees it (under its own root), not only the
	// host's.
	ContainerPaths bool

	// Escalation loads the commit_creds hook (bpf/kprobe.bpf.c), which
	// reports privilege.escalation: uid or euid 0 gained outside a syscall
	// that grants it.
	Escalation bool
	// KillOnEscalation makes the commit_creds hook SIGKILL the task that
	// escalates (within CgroupPath; whatever IgnoreComms says); its record
	// has EscalationKilled. Load fails when the hook cannot run.
	KillOnEscalation bool

	// ShellCommands loads the uprobe object's readline uretprobe: lines
	// read by interactive bash shells (process.shell_command). The bash
	// binaries among ShellBinaries that exist are probed at load (deduplicated
	// by inode); AttachShell and AttachShellOf probe more.
	ShellCommands bool
	ShellBinaries []string
	// Uprobes are user-space probes to attach (process.uprobe). Load fails
	// when one cannot be attached.
	Uprobes []Uprobe

	// shellLimit, when set, replaces MaxShellBinaries (tests).
	shellLimit int
	// failObjects makes the named objects fail to load (tests).
	failObjects []string
	// hookModes are the hook modes tried, in order (tests); default
	// fentry, then kprobe.
	hookModes []HookMode
	// ungranted are syscall numbers left out of the granting set (tests: a
	// syscall the escalation detector does not know to grant).
	ungranted []uint32
}

// Probe is the loaded and attached programs.
type Probe struct {
	shared   sharedMaps
	identity policyIdentity // the host's root and the agent's executable, for the executable policy
	// The configured entry each policy key came from (PolicyEntry).
	policyByPath map[string]string
	policyByFile map[processFileId]string
	// PolicyPathsNotOnHost are the kill_paths and deny_exec_paths entries with
	// no file on the host when Load ran: they match by path only (a file
	// created there later; a container's file there with ContainerPaths).
	PolicyPathsNotOnHost []string
	process              *processObjects
	file                 *fileObjects
	net                  *netObjects
	priv                 *privObjects
	lsm                  *lsmObjects
	uprobe               *uprobeObjects
	hooks                *hookObjects
	links                map[string][]link.Link // by object
	linkMu               sync.Mutex             // links: AttachShell adds to them while the probe runs

	uprobes []Uprobe
	shells  *shellProbes

	// Unavailable says, per object ("process", "file", "net", "priv", "uprobe"), why it is not
	// running: its programs failed to load or attach. The others run.
	Unavailable map[string]error
	// Hooks says, per kernel-function hook that Config asks for, how it
	// runs (fentry, kprobe) or why it does not.
	Hooks map[Hook]HookStatus
	// ShellErrors are why bash binaries of ShellBinaries could not be
	// probed (those that exist).
	ShellErrors []error
	// Missing lists the tracepoints this kernel lacks (e.g. syscalls that
	// an architecture does not have); their programs are not attached.
	Missing []string
}

// sharedMaps are created once and handed to every object.
type sharedMaps struct {
	events, lost, ignore, cgroup, created *ebpf.Map
	policyPaths, policyFiles              *ebpf.Map // the executable policy (kill, deny), policy.go
}

func (m *sharedMaps) replacements() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		processMapEvents: m.events, processMapLostEvents: m.lost,
		processMapIgnoreComms: m.ignore, processMapCgroupFilter: m.cgroup,
		processMapCreatedFiles:    m.created,
		processMapExecPolicyPaths: m.policyPaths, processMapExecPolicyFiles: m.policyFiles,
	}
}

func (m *sharedMaps) close() error {
	var errs []error
	for _, mp := range []*ebpf.Map{m.events, m.lost, m.ignore, m.cgroup, m.created, m.policyPaths, m.policyFiles} {
		if mp != nil {
			errs = append(errs, mp.Close())
		}
	}
	return errors.Join(errs...)
}

// Load checks the prerequisites, creates the shared maps, loads the objects
// that cfg asks for, fills their maps and attaches their programs. An object
// that fails is recorded in Unavailable and the others run; Load fails when
// none runs. The errors say what to change.
func Load(cfg Config) (*Probe, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if _, err := os.Stat(kernelBTF); err != nil {
		return nil, fmt.Errorf("kernel BTF not found at %s (%w): the ebpf receiver needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later; most distributions ship it)", kernelBTF, err)
	}
	// A no-op on kernels 5.11+, which charge BPF memory to the cgroup: only older
	// ones need CAP_SYS_RESOURCE, which the DaemonSet does not add by default.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, memlockError(err, kernelRelease())
	}

	spec, err := loadProcess()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	spec.Maps[processMapEvents].MaxEntries = uint32(cfg.RingBufferSize)
	var cgroupDir *os.File
	if cfg.CgroupPath != "" {
		if cgroupDir, err = openCgroup2(cfg.CgroupPath); err != nil {
			return nil, err
		}
		defer cgroupDir.Close()
	}

	p := &Probe{Unavailable: map[string]error{}, Hooks: map[Hook]HookStatus{}, links: map[string][]link.Link{}}
	if p.identity, err = newPolicyIdentity(); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name string
		dst  **ebpf.Map
	}{
		{processMapEvents, &p.shared.events}, {processMapLostEvents, &p.shared.lost}, {processMapIgnoreComms, &p.shared.ignore},
		{processMapCgroupFilter, &p.shared.cgroup}, {processMapCreatedFiles, &p.shared.created},
		{processMapExecPolicyPaths, &p.shared.policyPaths}, {processMapExecPolicyFiles, &p.shared.policyFiles},
	} {
		if *m.dst, err = ebpf.NewMap(spec.Maps[m.name]); err != nil {
			p.Close()
			return nil, fmt.Errorf("creating the %s map: %w", m.name, explainErrno(err))
		}
	}
	if err := p.fillMaps(cfg, cgroupDir); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.fillExecPolicy(cfg, p.identity); err != nil {
		p.Close()
		return nil, err
	}

	requested := 0
	for _, obj := range []struct {
		name   string
		wanted bool
		load   func() error
	}{
		{"process", !cfg.SkipExec || !cfg.SkipExit || !cfg.SkipFork, func() error { return p.loadProcess(spec, cfg) }},
		{"file", len(cfg.FileKinds) > 0, func() error { return p.loadFile(cfg) }},
		{"net", len(cfg.NetKinds) > 0, func() error { return p.loadNet(cfg) }},
		// After file and net (the hooks leave to them what they attached), before priv.
		{"hooks", len(cfg.wantedHooks()) > 0, func() error {
			n, err := p.loadHookObject(cfg)
			requested += n - 1 // counted only when privilege.escalation is asked for: the others fall back to tracepoints
			return err
		}},
		{"uprobe", cfg.ShellCommands || len(cfg.Uprobes) > 0, func() error { return p.loadUprobe(cfg) }},
		// Last: its bpf() watch would otherwise report the loads of the objects after it.
		{"priv", len(cfg.PrivKinds) > 0, func() error { return p.loadPriv(cfg) }},
	} {
		if !obj.wanted {
			continue
		}
		requested++
		err := obj.load()
		if obj.name == "hooks" && err != nil {
			p.Close() // kill_on_escalation without its hook
			return nil, err
		}
		if slices.Contains(cfg.failObjects, obj.name) {
			err = errors.New("failing on purpose (test)")
		}
		if err != nil {
			p.Unavailable[obj.name] = err
			p.unload(obj.name)
		}
	}
	if err := p.Unavailable["uprobe"]; err != nil && len(cfg.Uprobes) > 0 {
		// Configured uprobes are never skipped quietly: one that cannot attach fails Load.
		p.Close()
		return nil, err
	}
	if len(cfg.DenyExecPaths) > 0 {
		// Enforcement asked for is never skipped quietly: without it, Load fails.
		if err := p.loadLSM(cfg); err != nil {
			p.Close()
			return nil, err
		}
	}
	if cfg.enforcing() && (cfg.SkipExec || p.process == nil) {
		err := errors.New("enforcement (kill_paths, kill_comms) needs the process.exec program, which is not running")
		if perr := p.Unavailable["process"]; perr != nil {
			err = fmt.Errorf("%w: %w", err, perr)
		}
		p.Close()
		return nil, err
	}
	if requested > 0 && len(p.Unavailable) == requested {
		var errs []error
		for name, err := range p.Unavailable {
			errs = append(errs, fmt.Errorf("%s programs: %w", name, err))
		}
		p.Close()
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// prepareSpec sets what every object shares: the ring buffer's size (it must
// match the shared map's), when to wake its reader, the cgroup filter's
// switch, and the identities the executable policy compares with.
func (p *Probe) prepareSpec(spec *ebpf.CollectionSpec, cfg Config) error {
	spec.Maps[processMapEvents].MaxEntries = uint32(cfg.RingBufferSize)
	if err := setPolicyVariables(spec, p.identity); err != nil {
		return err
	}
	if err := spec.Variables[processVarCfgWakeupBytes].Set(wakeupBytes(cfg.RingBufferSize)); err != nil {
		return fmt.Errorf("setting the ring's wakeup mark: %w", err)
	}
	if cfg.CgroupPath == "" {
		return nil
	}
	if err := spec.Variables[processVarCfgCgroupFilter].Set(uint8(1)); err != nil {
		return fmt.Errorf("setting the cgroup filter: %w", err)
	}
	return nil
}

func (p *Probe) loadProcess(spec *ebpf.CollectionSpec, cfg Config) error {
	if err := spec.Variables[processVarCfgMaxArgs].Set(uint32(cfg.MaxArgs)); err != nil {
		return fmt.Errorf("setting max_args: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	skipFork := cfg.SkipFork
	if cfg.SkipFork && cfg.ForkCloneParentOnly {
		if err := spec.Variables[processVarCfgForkCloneParentOnly].Set(uint8(1)); err != nil {
			return fmt.Errorf("setting the fork filter: %w", err)
		}
		skipFork = false
	}
	if cfg.enforcing() {
		if err := spec.Variables[processVarCfgEnforce].Set(uint8(1)); err != nil {
			return fmt.Errorf("setting enforcement: %w", err)
		}
	}
	objs := &processObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLoadError("process", err)
	}
	p.process = objs
	// Filled before the programs are attached: no exec escapes a half-filled map.
	for _, c := range cfg.KillComms {
		if err := objs.EnforceComms.Put(CommKey(c), uint8(1)); err != nil {
			return fmt.Errorf("adding %q to the kill comms: %w", c, err)
		}
	}
	for _, prog := range []struct {
		name string
		p    *ebpf.Program
		skip bool
	}{
		{"tp_btf/sched_process_exec", objs.HandleExec, cfg.SkipExec}, {"tp_btf/sched_process_exit", objs.HandleExit, cfg.SkipExit},
		{"tp_btf/sched_process_fork", objs.HandleFork, skipFork},
	} {
		if prog.skip {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog.p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attaching %s: %w", prog.name, explainErrno(err))
		}
		p.links["process"] = append(p.links["process"], l)
	}
	return nil
}

// attachSyscalls attaches each program to its syscalls tracepoint and exit to
// the matching sys_exit tracepoints. A tracepoint the kernel lacks is noted in
// Missing; it fails only when none of them could be attached.
func (p *Probe) attachSyscalls(object string, progs []syscallProg, exit *ebpf.Program) error {
	attached := 0
	for _, sp := range progs {
		l, err := link.Tracepoint("syscalls", "sys_enter_"+sp.syscall, sp.prog, nil)
		if errors.Is(err, os.ErrNotExist) {
			p.Missing = append(p.Missing, "syscalls/sys_enter_"+sp.syscall)
			continue
		}
		if err != nil {
			return fmt.Errorf("attaching syscalls/sys_enter_%s: %w", sp.syscall, explainErrno(err))
		}
		p.links[object] = append(p.links[object], l)
		if l, err = link.Tracepoint("syscalls", "sys_exit_"+sp.syscall, exit, nil); err != nil {
			return fmt.Errorf("attaching syscalls/sys_exit_%s: %w", sp.syscall, explainErrno(err))
		}
		p.links[object] = append(p.links[object], l)
		attached++
	}
	if attached == 0 && len(progs) > 0 {
		return fmt.Errorf("none of the syscalls tracepoints exist (%v)", p.Missing)
	}
	return nil
}

type syscallProg struct {
	syscall string
	prog    *ebpf.Program
}

func checkConfig(cfg Config) error {
	n := cfg.RingBufferSize
	if n < os.Getpagesize() || n&(n-1) != 0 {
		return fmt.Errorf("ring buffer size %d: must be a power of two of at least the page size (%d)", n, os.Getpagesize())
	}
	if cfg.MaxArgs < 1 || cfg.MaxArgs > MaxArgsCap {
		return fmt.Errorf("max args %d: must be between 1 and %d", cfg.MaxArgs, MaxArgsCap)
	}
	var errs []error
	if len(cfg.KillPaths) > MaxEnforceEntries || len(cfg.KillComms) > MaxEnforceEntries || len(cfg.DenyExecPaths) > MaxEnforceEntries {
		errs = append(errs, fmt.Errorf("enforcement: at most %d kill paths, kill comms and denied executables each", MaxEnforceEntries))
	}
	for _, p := range cfg.KillPaths {
		if len(p) == 0 || p[0] != '/' || len(p) >= ExecFilenameMax {
			errs = append(errs, fmt.Errorf("kill path %q: must be absolute and shorter than %d bytes", p, ExecFilenameMax))
		}
	}
	for _, c := range cfg.KillComms {
		if c == "" {
			errs = append(errs, errors.New("kill comms: empty name"))
		}
	}
	if cfg.KillOnEscalation && !cfg.Escalation {
		errs = append(errs, errors.New("kill on escalation needs the escalation hook (Escalation)"))
	}
	for _, k := range cfg.PrivKinds {
		if !IsPrivKind(k) {
			errs = append(errs, fmt.Errorf("privilege kinds: %v is not a privilege event", k))
		}
	}
	return errors.Join(checkFileConfig(cfg), checkNetConfig(cfg), checkUprobes(cfg.Uprobes), errors.Join(errs...))
}

func (cfg Config) enforcing() bool { return len(cfg.KillPaths) > 0 || len(cfg.KillComms) > 0 }

func (p *Probe) fillMaps(cfg Config, cgroupDir *os.File) error {
	for _, c := range cfg.IgnoreComms {
		key := CommKey(c)
		if err := p.shared.ignore.Put(key, uint8(1)); err != nil {
			return fmt.Errorf("adding %q to the ignored comms: %w", c, err)
		}
	}
	if cgroupDir != nil {
		if err := p.shared.cgroup.Put(uint32(0), uint32(cgroupDir.Fd())); err != nil {
			return fmt.Errorf("setting the cgroup filter to %s: %w", cfg.CgroupPath, err)
		}
	}
	return nil
}

// CommKey returns comm as the kernel stores it: at most 15 bytes, NUL padded.
func CommKey(comm string) [CommLen]byte {
	var k [CommLen]byte
	copy(k[:CommLen-1], comm)
	return k
}

func openCgroup2(path string) (*os.File, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("cgroup_path %s: %w", path, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup_path %s is not on a cgroup v2 file system (mount one with `mount -t cgroup2 none /sys/fs/cgroup`, or point at the unified hierarchy, e.g. /sys/fs/cgroup/unified)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cgroup_path: %w", err)
	}
	return f, nil
}

// memlockError explains a refused raise of RLIMIT_MEMLOCK: a kernel before 5.11
// charges BPF maps to it, and raising it takes CAP_SYS_RESOURCE.
func memlockError(err error, release string) error {
	return fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps: %w: kernel %s charges BPF memory to RLIMIT_MEMLOCK (kernels before 5.11 do) "+
		"and this process may not raise it: add the SYS_RESOURCE capability to the agent's container "+
		"(docs/install.md, \"Kernels before 5.11\"), run as root with CAP_SYS_RESOURCE, or set `ulimit -l unlimited`", err, release)
}

// kernelRelease is uname -r, or "(unknown)".
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "(unknown)"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func explainLoadError(object string, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("the kernel's verifier refused the %s programs (kernel too old or too new for this object? please report it): %+v", object, ve)
	}
	return fmt.Errorf("loading the %s programs: %w", object, explainErrno(err))
}

func explainErrno(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: the ebpf receiver needs root, or CAP_BPF and CAP_PERFMON, and CAP_SYS_RESOURCE on kernels before 5.11 (running as uid %d); with kernel.unprivileged_bpf_disabled and lockdown=confidentiality, BPF tracing is refused even to root", err, os.Geteuid())
	case errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("%w: the kernel refused memory for the maps: lower ring_buffer_size, raise RLIMIT_MEMLOCK (`ulimit -l unlimited`) or the cgroup's memory limit", err)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ESRCH):
		return fmt.Errorf("%w: the tracepoint is missing from this kernel's BTF; tp_btf programs need Linux 5.5+ with CONFIG_DEBUG_INFO_BTF", err)
	}
	return err
}

// MountHint says how to mount the file systems the receiver may need when
// they are missing: tracefs (classic tracepoints: the file, network and
// privilege programs) and bpffs (pinning). The process programs need neither.
func MountHint() error {
	var errs []error
	for _, m := range []struct {
		path  string
		magic int64
		cmd   string
	}{
		{"/sys/kernel/tracing", unix.TRACEFS_MAGIC, "mount -t tracefs nodev /sys/kernel/tracing"},
		{"/sys/fs/bpf", unix.BPF_FS_MAGIC, "mount -t bpf bpffs /sys/fs/bpf"},
	} {
		var st unix.Statfs_t
		if err := unix.Statfs(m.path, &st); err != nil || st.Type != m.magic {
			errs = append(errs, fmt.Errorf("%s is not mounted: run `%s` (in Kubernetes, mount the host's path into the pod)", m.path, m.cmd))
		}
	}
	return errors.Join(errs...)
}

// LostCounts returns, per event kind, how many records the kernel could not
// put in the ring buffer since load.
func (p *Probe) LostCounts() ([NumKinds]uint64, error) {
	var out [NumKinds]uint64
	for k := range NumKinds {
		n, err := sumPerCPU(p.shared.lost, uint32(k))
		if err != nil {
			return out, fmt.Errorf("reading lost counts: %w", err)
		}
		out[k] = n
	}
	return out, nil
}

// sumPerCPU adds up the per-CPU slots of one key of a per-CPU array: the
// kernel's counters, kept per CPU so that no program needs atomics.
func sumPerCPU(m *ebpf.Map, key uint32) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(key, &perCPU); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// KillCount returns how many SIGKILLs enforcement has sent since load (0
// when the process programs are not loaded).
func (p *Probe) KillCount() (uint64, error) {
	if p.process == nil {
		return 0, nil
	}
	n, err := sumPerCPU(p.process.EnforceKills, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the kill count: %w", err)
	}
	return n, nil
}

// NewReader opens a reader on the ring buffer. One reader per Probe.
func (p *Probe) NewReader() (*Reader, error) {
	rd, err := ringbuf.NewReader(p.shared.events)
	if err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return &Reader{rd: rd}, nil
}

// unload detaches and closes one object after it failed, so that nothing of
// it runs half attached.
func (p *Probe) unload(object string) {
	_ = closeLinks(p.links[object])
	delete(p.links, object)
	switch object {
	case "process":
		if p.process != nil {
			_ = p.process.Close()
			p.process = nil
		}
	case "file":
		if p.file != nil {
			_ = p.file.Close()
			p.file = nil
		}
	case "net":
		if p.net != nil {
			_ = p.net.Close()
			p.net = nil
		}
	case "priv":
		if p.priv != nil {
			_ = p.priv.Close()
			p.priv = nil
		}
	case "lsm":
		if p.lsm != nil {
			_ = p.lsm.Close()
			p.lsm = nil
		}
	case "hooks":
		if p.hooks != nil {
			_ = p.hooks.Close()
			p.hooks = nil
		}
	case "uprobe":
		if p.uprobe != nil {
			_ = p.uprobe.Close()
			p.uprobe = nil
			p.shells = nil
		}
	}
}

// closeLinks closes links concurrently: detaching a program from a syscalls
// tracepoint waits for an RCU grace period (these tracepoints may fault),
// about 100 ms each on 6.x kernels; in parallel the waits overlap.
func closeLinks(links []link.Link) error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close detaches and unloads everything. No AttachShell may run then or after.
func (p *Probe) Close() error {
	var errs []error
	var all []link.Link
	p.linkMu.Lock()
	for _, links := range p.links {
		all = append(all, links...)
	}
	p.links = nil
	p.linkMu.Unlock()
	errs = append(errs, closeLinks(all))
	if p.process != nil {
		errs = append(errs, p.process.Close())
		p.process = nil
	}
	if p.file != nil {
		errs = append(errs, p.file.Close())
		p.file = nil
	}
	if p.net != nil {
		errs = append(errs, p.net.Close())
		p.net = nil
	}
	if p.priv != nil {
		errs = append(errs, p.priv.Close())
		p.priv = nil
	}
	if p.lsm != nil {
		errs = append(errs, p.lsm.Close())
		p.lsm = nil
	}
	if p.hooks != nil {
		errs = append(errs, p.hooks.Close())
		p.hooks = nil
	}
	if p.uprobe != nil {
		errs = append(errs, p.uprobe.Close())
		p.uprobe = nil
		p.shells = nil
	}
	errs = append(errs, p.shared.close())
	p.shared = sharedMaps{}
	return errors.Join(errs...)
}

// ErrClosed is returned by Read after Close.
var ErrClosed = os.ErrClosed

// ErrStopped is returned by Read after Stop, once the records pending at
// Stop are read.
var ErrStopped = ringbuf.ErrFlushed

// Reader decodes ring-buffer records. Not safe for concurrent Reads.
type Reader struct {
	rd       *ringbuf.Reader
	rec      ringbuf.Record
	deadline time.Time // the caller's; zero: none
	wait     time.Time // the ring reader's, as last set
}

// pollInterval is the longest a record waits in the ring unread: the
// programs wake the reader only once wakeupBytes are pending, so the reader
// looks on its own at least this often.
const pollInterval = 25 * time.Millisecond

// wakeupBytes is how much the programs let pend in a ring of size bytes
// before they wake the reader: 1/64 of it (128 KiB of the default 8 MiB),
// hundreds of records per wakeup in a storm, and far from full.
func wakeupBytes(size int) uint64 { return uint64(size / 64) }

// Read blocks until a record is available (or the deadline passes:
// os.ErrDeadlineExceeded; or the reader is closed: ErrClosed) and decodes it
// into ev. ev's byte slices are valid until the next Read.
func (r *Reader) Read(ev *Event) error {
	if err := r.next(); err != nil {
		return err
	}
	return Decode(r.rec.RawSample, ev)
}

// ReadRaw is Read without decoding; raw is valid until the next read.
func (r *Reader) ReadRaw() (raw []byte, err error) {
	if err := r.next(); err != nil {
		return nil, err
	}
	return r.rec.RawSample, nil
}

// next reads the next record, polling the ring every pollInterval while it
// is empty. While records are pending it reads no clock: the ring reader's
// own deadline is then one in the past, so that it reads what is there
// instead of waiting for a wakeup that may never come.
func (r *Reader) next() error {
	for {
		if r.rd.AvailableBytes() > 0 {
			if r.wait != pastDeadline {
				r.wait = pastDeadline
				r.rd.SetDeadline(r.wait)
			}
		} else {
			r.wait = time.Now().Add(pollInterval)
			if !r.deadline.IsZero() && r.deadline.Before(r.wait) {
				r.wait = r.deadline
			}
			r.rd.SetDeadline(r.wait)
		}
		err := r.rd.ReadInto(&r.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) && (r.deadline.IsZero() || time.Now().Before(r.deadline)) {
			continue // a poll, not the caller's deadline
		}
		return err
	}
}

// pastDeadline makes the ring reader read without waiting.
var pastDeadline = time.Unix(1, 0)

// SetDeadline makes reads return os.ErrDeadlineExceeded after t; zero means none.
func (r *Reader) SetDeadline(t time.Time) { r.deadline = t }

// Stop makes the reading goroutine's Read return ErrStopped after the
// records pending now, so that it can return before Close.
func (r *Reader) Stop() error { return r.rd.Flush() }

// Close unblocks pending reads. It unmaps the ring, which Read looks at
// without a lock: a Read still running may fault. Stop the reader and wait
// for its goroutine first.
func (r *Reader) Close() error { return r.rd.Close() }

// Clock converts the records' CLOCK_BOOTTIME timestamps to wall time.
type Clock struct{ offset int64 }

// NewClock samples the offset between CLOCK_REALTIME and CLOCK_BOOTTIME.
func NewClock() Clock {
	var bt unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	return Clock{offset: time.Now().UnixNano() - bt.Nano()}
}

// Wall returns the wall time of a CLOCK_BOOTTIME timestamp.
func (c Clock) Wall(ktime uint64) time.Time { return time.Unix(0, int64(ktime)+c.offset) }

// BootNano returns a wall time as CLOCK_BOOTTIME nanoseconds.
func (c Clock) BootNano(t time.Time) uint64 { return uint64(t.UnixNano() - c.offset) }
