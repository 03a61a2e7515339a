package ebpfreceiver

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Event names this receiver can emit, as `events` lists them.
const (
	eventProcessExec = "process.exec"
	eventProcessExit = "process.exit"
	eventProcessFork = "process.fork"
	eventFileOpen    = "file.open"
	eventFileUnlink  = "file.unlink"
	eventFileRename  = "file.rename"
	eventFileChmod   = "file.chmod"
	eventFileChown   = "file.chown"
	eventFileLink    = "file.link"
	eventFileSymlink = "file.symlink"
	eventNetConnect  = "network.connect"
	eventNetAccept   = "network.accept"
	eventNetBind     = "network.bind"
	eventNetListen   = "network.listen"
	eventNetTCPState = "network.tcp_state"
	eventNetSocket   = "network.socket"
	eventFdDup       = "process.fd_dup"

	eventPrivSetuid  = "privilege.setuid"
	eventPrivSetgid  = "privilege.setgid"
	eventPrivCapset  = "privilege.capset"
	eventNsSetns     = "namespace.setns"
	eventNsUnshare   = "namespace.unshare"
	eventNsMount     = "namespace.mount"
	eventModuleLoad  = "kernel.module_load"
	eventPtrace      = "process.ptrace"
	eventBPFLoad     = "kernel.bpf_load"
	eventMemfdCreate = "process.memfd_create"
	// eventPrivEscalation: uid 0 gained outside a syscall that grants it
	// (the commit_creds hook; needs fentry or kprobes).
	eventPrivEscalation = "privilege.escalation"

	// Not in events: shell_commands and uprobes turn these on.
	eventShellCommand = "process.shell_command"
	eventUprobe       = "process.uprobe"
)

var knownEvents = []string{
	eventProcessExec, eventProcessExit, eventProcessFork,
	eventFileOpen, eventFileUnlink, eventFileRename, eventFileChmod, eventFileChown, eventFileLink, eventFileSymlink,
	eventNetConnect, eventNetAccept, eventNetBind, eventNetListen, eventNetTCPState, eventNetSocket, eventFdDup,
	eventPrivSetuid, eventPrivSetgid, eventPrivCapset, eventNsSetns, eventNsUnshare, eventNsMount,
	eventModuleLoad, eventPtrace, eventBPFLoad, eventMemfdCreate, eventPrivEscalation,
}

// privEvents maps the privilege and isolation event names to the probe's kinds.
var privEvents = map[string]probe.Kind{
	eventPrivSetuid: probe.KindPrivSetuid, eventPrivSetgid: probe.KindPrivSetgid, eventPrivCapset: probe.KindPrivCapset,
	eventNsSetns: probe.KindNsSetns, eventNsUnshare: probe.KindNsUnshare, eventNsMount: probe.KindNsMount,
	eventModuleLoad: probe.KindModuleLoad, eventPtrace: probe.KindPtrace, eventBPFLoad: probe.KindBPFLoad,
	eventMemfdCreate: probe.KindMemfdCreate,
}

// netEvents maps the names of the network object's events to the probe's
// kinds (process.fd_dup is about a socket: that object's too).
var netEvents = map[string]probe.Kind{
	eventNetConnect: probe.KindNetConnect, eventNetAccept: probe.KindNetAccept, eventNetBind: probe.KindNetBind,
	eventNetListen: probe.KindNetListen, eventNetTCPState: probe.KindNetTCPState,
	eventNetSocket: probe.KindNetSocket, eventFdDup: probe.KindFdDup,
}

// fileEvents maps the file event names to the probe's kinds.
var fileEvents = map[string]probe.Kind{
	eventFileOpen: probe.KindFileOpen, eventFileUnlink: probe.KindFileUnlink, eventFileRename: probe.KindFileRename,
	eventFileChmod: probe.KindFileChmod, eventFileChown: probe.KindFileChown,
	eventFileLink: probe.KindFileLink, eventFileSymlink: probe.KindFileSymlink,
}

// defaultEvents are every event but process.fork: each exec already follows a
// fork, and the process cache gives a child its parent's executable anyway;
// forks double the volume of a busy node for little a rule can use. (The
// forks whose child's parent is not the forker, CLONE_PARENT as runc's init
// stages, still reach the cache: probe.Config.ForkCloneParentOnly.)
var defaultEvents = slices.DeleteFunc(slices.Clone(knownEvents), func(e string) bool { return e == eventProcessFork })

// defaultFilePrefixes are the paths whose file events matter by default:
// configuration, binaries, credentials, boot and kernel modules; root's SSH
// keys, shell rc files and history (not all of /root: build caches live
// there), cron spools, logs (clearing), and the memory devices. The runtime
// pack's persistence, tampering and host-access rules read them; few programs
// open them, so they cost little.
var defaultFilePrefixes = []string{
	"/etc", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin",
	"/root/.ssh", "/var/run/secrets", "/run/secrets", "/boot", "/lib/modules",
	"/root/.bashrc", "/root/.profile", "/root/.bash_profile", "/root/.bash_login", "/root/.zshrc",
	"/root/.bash_history", "/root/.ash_history", "/root/.zsh_history", "/root/.history",
	"/var/spool/cron", "/var/log", "/dev/mem", "/dev/kmem", "/dev/port",
	// Disks by their usual first names (a prefix is a path component: /dev/sda
	// is not /dev/sda2): what a privileged container reads the node's disk through.
	"/dev/sda", "/dev/sda1", "/dev/vda", "/dev/vda1", "/dev/xvda", "/dev/xvda1", "/dev/nvme0n1", "/dev/nvme0n1p1",
	// Kernel knobs that reconnaissance reads and sabotage writes (ASLR, SysRq,
	// the scheduler's list of every task on the node).
	"/proc/sys/kernel/randomize_va_space", "/proc/sys/kernel/sysrq", "/proc/sysrq-trigger", "/proc/sched_debug",
	"/sys/kernel/debug/sched",
}

const (
	defaultRingBufferSize   = 8 << 20 // 8 MiB: ~40,000 exec records of a typical size
	defaultMaxArgs          = 16
	defaultProcessCacheSize = 32768 // pid_max's default; entries are ~200 bytes
	minRingBufferSize       = 4096
	maxRingBufferSize       = 1 << 30
	defaultMetricsInterval  = 30 * time.Second
)

// Config is the ebpf receiver's configuration. `ebpf:` with no settings works.
type Config struct {
	// Events are the event kinds to emit; they decide which BPF objects are
	// loaded. Default: all of them but process.fork (process.exec,
	// process.exit, file.open, file.unlink, file.rename, file.chmod,
	// file.chown, file.link, file.symlink, network.connect,
	// network.accept, network.bind, network.listen, network.tcp_state,
	// network.socket, process.fd_dup, privilege.setuid, privilege.setgid, privilege.capset, namespace.setns,
	// namespace.unshare, namespace.mount, kernel.module_load, process.ptrace,
	// kernel.bpf_load, process.memfd_create, privilege.escalation).
	Events []string `mapstructure:"events"`
	// RingBufferSize is the kernel ring buffer's size in bytes: a power of two,
	// 4096 (one page) to 1 GiB. Default 8 MiB.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// MetricsInterval is how often a metrics pipeline of this receiver gets the
	// kernel event counts (k8ssec.ebpf.events.read and .lost, cumulative). Default 30s.
	MetricsInterval time.Duration `mapstructure:"metrics_interval"`
	// MaxArgs is how many argv entries an exec event keeps (1 to 128; at most
	// 4 KiB of them in all). Default 16.
	MaxArgs int `mapstructure:"max_args"`
	// IgnoreComms are task names (comm, as in /proc/<pid>/comm) whose events
	// the kernel drops before they reach the ring buffer. Names longer than 15
	// bytes match on their first 15, as the kernel keeps them. Applies to
	// every event but network.tcp_state (often raised in softirq, on behalf
	// of no task in particular). Default: none.
	IgnoreComms []string `mapstructure:"ignore_comms"`
	// CgroupPath, when set, is a cgroup v2 directory: only processes in it or
	// below it are reported (e.g. /sys/fs/cgroup/kubepods.slice for container
	// processes only). network.tcp_state is filtered by the socket's cgroup
	// (that of the task that created it). Default: every process.
	CgroupPath string `mapstructure:"cgroup_path"`
	// ProcessCacheSize bounds the pid -> executable cache that gives exit
	// events their executable and exec events their parent's. Default 32768.
	ProcessCacheSize int `mapstructure:"process_cache_size"`
	// FilePrefixes are the absolute paths whose file events are reported: the
	// path itself and everything below it (/etc matches /etc and /etc/passwd,
	// not /etcd). The kernel matches the path as the syscall received it: only
	// absolute paths are matched; relative paths (to the cwd or to a directory
	// fd) are not resolved in the kernel and are not reported, nor are paths
	// reached through symlinks or bind mounts under another name. At most 255
	// bytes each; "/" matches every absolute path. Default: /etc, /bin, /sbin,
	// /usr/bin, /usr/sbin, /usr/local/bin, /root/.ssh, /var/run/secrets,
	// /run/secrets, /boot, /lib/modules, root's shell rc and history files
	// (/root/.bashrc, .profile, .bash_profile, .bash_login, .zshrc,
	// .bash_history, .ash_history, .zsh_history, .history), /var/spool/cron,
	// /var/log, /dev/mem, /dev/kmem, /dev/port, and the first disks (/dev/sda,
	// /dev/sda1, /dev/vda, /dev/vda1, /dev/xvda, /dev/xvda1, /dev/nvme0n1,
	// /dev/nvme0n1p1), /proc/sys/kernel/randomize_va_space,
	// /proc/sys/kernel/sysrq, /proc/sysrq-trigger, /proc/sched_debug,
	// /sys/kernel/debug/sched.
	FilePrefixes []string `mapstructure:"file_prefixes"`
	// PortsOfInterest, when set, keeps only the network events on these ports
	// (the remote port for connect; the local one for bind, listen and
	// accept; either end for tcp_state), in the kernel. Default: empty, every
	// port. Unix-socket connects have no port and are always reported.
	PortsOfInterest []uint16 `mapstructure:"ports_of_interest"`
	// Kubernetes gives each event its container and pod (kubernetes.go).
	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`
	// Enforcement kills processes at exec. Default: empty, no enforcement.
	Enforcement EnforcementConfig `mapstructure:"enforcement"`
	// ShellCommands reports each line typed into an interactive bash
	// (process.shell_command): a uretprobe on bash's readline, attached to
	// the host's bash at start and to each other bash binary (a container's
	// own, by inode) when a process execs an executable named bash (the
	// path the kernel resolved: a /bin/sh linked to bash too; this needs
	// process.exec among the events) or runs as bash when the receiver
	// starts; at most 64 distinct binaries. Filtered by cgroup_path and
	// ignore_comms. It costs nothing until a line is typed. Default: true.
	ShellCommands bool `mapstructure:"shell_commands"`
	// Uprobes are user-space probes on functions of executables or shared
	// libraries (process.uprobe, one record a call). Default: none.
	Uprobes []UprobeConfig `mapstructure:"uprobes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// EnforcementConfig stops processes rather than only reporting them: the
// exec program sends SIGKILL to a process that execs a listed binary. The
// kill happens in the kernel at exec (tp_btf/sched_process_exec), before the
// new program's first instruction runs in user space: the process still
// appears in its process.exec record (with k8ssec.enforcement.action
// "sigkill" and k8ssec.enforcement.rule, the matched entry) and exits with
// signal 9. Enforcement applies only to execs the filters let through: within
// cgroup_path when it is set (so that a container cgroup, or a test one, can
// be targeted), and not to ignore_comms. It needs the process.exec event.
type EnforcementConfig struct {
	// KillPaths are absolute paths of executables to kill. Each names a file
	// in the host's mount namespace (the agent reads it through /proc/1/root
	// in a DaemonSet with hostPID), matched two ways: by the file's identity
	// (device and inode, taken when the receiver starts), so any name of it
	// (a symlink, a hard link, "//", "./", a bind mount) is killed; and by the
	// path the kernel resolved for the executable, so a file replaced at that
	// path is killed too. A copy elsewhere is another file and is not
	// matched (kill_comms and the drift rule are for those). A script is
	// matched by its interpreter's path, or by its own path when execve
	// received it spelled so. At most 255 bytes each, 16384 entries.
	// Default: none.
	KillPaths []string `mapstructure:"kill_paths"`
	// KillComms are task names (comm: the executable's base name, its first
	// 15 bytes, as the kernel keeps it) to kill at exec. At most 1024
	// entries. Default: none.
	KillComms []string `mapstructure:"kill_comms"`
	// DenyExecPaths are executables whose exec the kernel refuses (EPERM)
	// before the new program exists: BPF LSM (bprm_check_security), matched
	// as kill_paths are (by inode, so another path, a hard link, a symlink or
	// a rename of the same file is refused too; and by resolved path; a copy
	// is another file), scripts included. Needs a kernel running BPF LSM
	// (CONFIG_BPF_LSM and "bpf" in lsm=); without it the receiver does not
	// start. Applies within cgroup_path when set, whatever ignore_comms says.
	// Default: none.
	DenyExecPaths []string `mapstructure:"deny_exec_paths"`
	// KillOnEscalation sends SIGKILL, from the commit_creds hook, to a task
	// whose credentials gain uid or euid 0 outside a syscall that grants
	// them (privilege.escalation): it dies on its way back to user space,
	// before running as root. Within cgroup_path when set, whatever
	// ignore_comms says. Needs the privilege.escalation event and a kernel
	// that runs fentry or kprobe programs; without one the receiver does not
	// start. Default: false.
	KillOnEscalation bool `mapstructure:"kill_on_escalation"`
	// ContainerPaths makes kill_paths and deny_exec_paths also name, in every
	// container, the file at that path as the container sees it (the path the
	// kernel resolved up to the container's root), so "/usr/bin/nc" is
	// every container's nc. Name the file itself, not a symlink to it (the
	// kernel resolves the container's symlinks in the container: Debian's
	// /usr/bin/nc is /usr/bin/nc.openbsd). Default: false (host files only).
	ContainerPaths bool `mapstructure:"container_paths"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// UprobeConfig is one user-space probe.
type UprobeConfig struct {
	// Binary is the executable or shared library: an absolute path, or a
	// library name without a slash ("libc.so.6", or "libssl" for any
	// libssl.so*), found in /etc/ld.so.cache, then in the standard library
	// directories, when the receiver starts.
	Binary string `mapstructure:"binary"`
	// Symbol is the function, as the binary's symbol table names it.
	Symbol string `mapstructure:"symbol"`
	// Return probes the function's return instead of its entry: args then
	// has at most one entry, the return value's type.
	Return bool `mapstructure:"return"`
	// Args are the types of the first arguments, in order, at most 4: int
	// (the register's 64 bits, signed) or string (a NUL-terminated string in
	// the process's memory, at most 127 bytes kept). x86-64 System V calling
	// convention (C, C++, Rust's extern "C"; not Go's own ABI).
	Args []string `mapstructure:"args"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// uprobeArgTypes maps the args names to the probe's types.
var uprobeArgTypes = map[string]probe.UprobeArg{"int": probe.UprobeArgInt, "string": probe.UprobeArgString}

func (u *UprobeConfig) validate(i int) error {
	where := fmt.Sprintf("uprobes[%d] (binary %q, symbol %q)", i, u.Binary, u.Symbol)
	var errs []error
	switch {
	case u.Binary == "":
		errs = append(errs, fmt.Errorf("%s: binary is empty: give an absolute path or a library name", where))
	case strings.Contains(u.Binary, "/") && !strings.HasPrefix(u.Binary, "/"):
		errs = append(errs, fmt.Errorf("%s: binary must be an absolute path, or a library name without a slash", where))
	}
	if u.Symbol == "" {
		errs = append(errs, fmt.Errorf("%s: symbol is empty", where))
	}
	if len(u.Args) > probe.MaxUprobeArgs {
		errs = append(errs, fmt.Errorf("%s: %d args, at most %d are read", where, len(u.Args), probe.MaxUprobeArgs))
	}
	if u.Return && len(u.Args) > 1 {
		errs = append(errs, fmt.Errorf("%s: a return probe reads one value, the return value: at most one args entry", where))
	}
	for j, a := range u.Args {
		if _, ok := uprobeArgTypes[a]; !ok {
			errs = append(errs, fmt.Errorf("%s: args[%d] %q: the type must be int or string", where, j, a))
		}
	}
	return errors.Join(errs...)
}

func (e *EnforcementConfig) enabled() bool {
	return len(e.KillPaths) > 0 || len(e.KillComms) > 0 || len(e.DenyExecPaths) > 0 || e.KillOnEscalation
}

// kills reports whether SIGKILL enforcement (the exec program's) is asked for.
func (e *EnforcementConfig) kills() bool { return len(e.KillPaths) > 0 || len(e.KillComms) > 0 }

func (e *EnforcementConfig) validate(c *Config) error {
	var errs []error
	for _, p := range e.KillPaths {
		if !strings.HasPrefix(p, "/") || len(p) >= probe.ExecFilenameMax {
			errs = append(errs, fmt.Errorf("enforcement.kill_paths: %q must be an absolute path shorter than %d bytes", p, probe.ExecFilenameMax))
		}
	}
	for _, comm := range e.KillComms {
		if comm == "" {
			errs = append(errs, errors.New("enforcement.kill_comms: empty name"))
		}
		if slices.ContainsFunc(c.IgnoreComms, func(i string) bool { return probe.CommKey(i) == probe.CommKey(comm) }) {
			errs = append(errs, fmt.Errorf("enforcement.kill_comms: %q is also in ignore_comms, whose processes enforcement does not see", comm))
		}
	}
	for _, p := range e.DenyExecPaths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("enforcement.deny_exec_paths: %q must be an absolute path", p))
		}
	}
	if len(e.KillPaths) > probe.MaxEnforceEntries || len(e.KillComms) > probe.MaxEnforceEntries || len(e.DenyExecPaths) > probe.MaxEnforceEntries {
		errs = append(errs, fmt.Errorf("enforcement: at most %d kill_paths, kill_comms and deny_exec_paths each", probe.MaxEnforceEntries))
	}
	if e.KillOnEscalation && !c.wants(eventPrivEscalation) {
		errs = append(errs, fmt.Errorf("enforcement.kill_on_escalation: the kill happens in the hook that reports %s: add %s to events", eventPrivEscalation, eventPrivEscalation))
	}
	if e.kills() && !c.wants(eventProcessExec) {
		errs = append(errs, fmt.Errorf("enforcement: kills happen in the %s program: add %s to events", eventProcessExec, eventProcessExec))
	}
	return errors.Join(errs...)
}

func createDefaultConfig() component.Config {
	return &Config{
		Events:           slices.Clone(defaultEvents),
		RingBufferSize:   defaultRingBufferSize,
		MetricsInterval:  defaultMetricsInterval,
		MaxArgs:          defaultMaxArgs,
		IgnoreComms:      []string{},
		ProcessCacheSize: defaultProcessCacheSize,
		FilePrefixes:     slices.Clone(defaultFilePrefixes),
		PortsOfInterest:  []uint16{},
		Kubernetes:       KubernetesConfig{AuthType: authNone},
		Enforcement:      EnforcementConfig{KillPaths: []string{}, KillComms: []string{}, DenyExecPaths: []string{}},
		ShellCommands:    true,
		Uprobes:          []UprobeConfig{},
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Kubernetes.validate(); err != nil {
		errs = append(errs, err)
	}
	n := c.RingBufferSize
	if n < minRingBufferSize || n > maxRingBufferSize || n&(n-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_size %d: must be a power of two from %d to %d", n, minRingBufferSize, maxRingBufferSize))
	}
	if c.MetricsInterval <= 0 {
		errs = append(errs, fmt.Errorf("metrics_interval %s: must be positive", c.MetricsInterval))
	}
	if c.MaxArgs < 1 || c.MaxArgs > probe.MaxArgsCap {
		errs = append(errs, fmt.Errorf("max_args %d: must be from 1 to %d", c.MaxArgs, probe.MaxArgsCap))
	}
	if len(c.Events) == 0 {
		errs = append(errs, fmt.Errorf("events: list at least one of %v", knownEvents))
	}
	for _, e := range c.Events {
		if !slices.Contains(knownEvents, e) {
			errs = append(errs, fmt.Errorf("events: unknown event %q (known: %v)", e, knownEvents))
		}
	}
	for _, comm := range c.IgnoreComms {
		if comm == "" {
			errs = append(errs, errors.New("ignore_comms: empty name"))
		}
	}
	for _, p := range c.FilePrefixes {
		if !strings.HasPrefix(p, "/") || len(p) >= probe.FilePathMax {
			errs = append(errs, fmt.Errorf("file_prefixes: %q must be an absolute path shorter than %d bytes (relative paths are not resolved in the kernel)", p, probe.FilePathMax))
		}
	}
	if len(c.FilePrefixes) == 0 && len(c.fileKinds()) > 0 {
		errs = append(errs, errors.New("file_prefixes: file events need at least one prefix"))
	}
	for _, p := range c.PortsOfInterest {
		if p == 0 {
			errs = append(errs, errors.New("ports_of_interest: 0 is not a port"))
		}
	}
	if err := c.Enforcement.validate(c); err != nil {
		errs = append(errs, err)
	}
	if len(c.Uprobes) > probe.MaxUprobes {
		errs = append(errs, fmt.Errorf("uprobes: %d entries, at most %d", len(c.Uprobes), probe.MaxUprobes))
	}
	for i := range c.Uprobes {
		if err := c.Uprobes[i].validate(i); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ProcessCacheSize < 1 {
		errs = append(errs, fmt.Errorf("process_cache_size %d: must be at least 1", c.ProcessCacheSize))
	}
	return errors.Join(errs...)
}

func (c *Config) wants(event string) bool { return slices.Contains(c.Events, event) }

// fileKinds are the file event kinds the config asks for.
func (c *Config) fileKinds() []probe.Kind { return c.kinds(fileEvents) }

// netKinds are the network event kinds the config asks for.
func (c *Config) netKinds() []probe.Kind { return c.kinds(netEvents) }

// privKinds are the privilege and isolation event kinds the config asks for.
func (c *Config) privKinds() []probe.Kind { return c.kinds(privEvents) }

func (c *Config) kinds(of map[string]probe.Kind) []probe.Kind {
	var kinds []probe.Kind
	for _, e := range c.Events {
		if k, ok := of[e]; ok && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}
