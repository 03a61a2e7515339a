package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Kind is an event kind: the first word of every record and the index of the
// kernel's loss counters (enum event_kind in bpf/events.h).
type Kind uint32

// The event kinds.
const (
	KindExec Kind = Kind(processEventKindEVENT_KIND_EXEC)
	KindExit Kind = Kind(processEventKindEVENT_KIND_EXIT)

	KindFileOpen   Kind = Kind(processEventKindEVENT_KIND_FILE_OPEN)
	KindFileUnlink Kind = Kind(processEventKindEVENT_KIND_FILE_UNLINK)
	KindFileRename Kind = Kind(processEventKindEVENT_KIND_FILE_RENAME)
	KindFileChmod  Kind = Kind(processEventKindEVENT_KIND_FILE_CHMOD)
	KindFileChown  Kind = Kind(processEventKindEVENT_KIND_FILE_CHOWN)

	KindNetConnect  Kind = Kind(processEventKindEVENT_KIND_NET_CONNECT)
	KindNetAccept   Kind = Kind(processEventKindEVENT_KIND_NET_ACCEPT)
	KindNetBind     Kind = Kind(processEventKindEVENT_KIND_NET_BIND)
	KindNetListen   Kind = Kind(processEventKindEVENT_KIND_NET_LISTEN)
	KindNetTCPState Kind = Kind(processEventKindEVENT_KIND_NET_TCP_STATE)

	KindPrivSetuid  Kind = Kind(processEventKindEVENT_KIND_PRIV_SETUID)
	KindPrivSetgid  Kind = Kind(processEventKindEVENT_KIND_PRIV_SETGID)
	KindPrivCapset  Kind = Kind(processEventKindEVENT_KIND_PRIV_CAPSET)
	KindNsSetns     Kind = Kind(processEventKindEVENT_KIND_NS_SETNS)
	KindNsUnshare   Kind = Kind(processEventKindEVENT_KIND_NS_UNSHARE)
	KindNsMount     Kind = Kind(processEventKindEVENT_KIND_NS_MOUNT)
	KindModuleLoad  Kind = Kind(processEventKindEVENT_KIND_MODULE_LOAD)
	KindPtrace      Kind = Kind(processEventKindEVENT_KIND_PTRACE)
	KindBPFLoad     Kind = Kind(processEventKindEVENT_KIND_BPF_LOAD)
	KindMemfdCreate Kind = Kind(processEventKindEVENT_KIND_MEMFD_CREATE)
	KindFork        Kind = Kind(processEventKindEVENT_KIND_FORK)
	KindFileLink    Kind = Kind(processEventKindEVENT_KIND_FILE_LINK)
	KindFileSymlink Kind = Kind(processEventKindEVENT_KIND_FILE_SYMLINK)
	// KindPrivEscalation: commit_creds gave a task uid 0 outside a syscall
	// that grants it (kprobe.bpf.c).
	KindPrivEscalation Kind = Kind(processEventKindEVENT_KIND_PRIV_ESCALATION)

	KindShellCommand Kind = Kind(processEventKindEVENT_KIND_SHELL_COMMAND)
	KindUprobe       Kind = Kind(processEventKindEVENT_KIND_UPROBE)
	KindNetSocket    Kind = Kind(processEventKindEVENT_KIND_NET_SOCKET)
	KindFdDup        Kind = Kind(processEventKindEVENT_KIND_FD_DUP)
	// NumKinds is the size of the loss array.
	NumKinds = int(processEventKindEVENT_KIND_MAX)
)

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "process.exec"
	case KindExit:
		return "process.exit"
	case KindFileOpen:
		return "file.open"
	case KindFileUnlink:
		return "file.unlink"
	case KindFileRename:
		return "file.rename"
	case KindFileChmod:
		return "file.chmod"
	case KindFileChown:
		return "file.chown"
	case KindNetConnect:
		return "network.connect"
	case KindNetAccept:
		return "network.accept"
	case KindNetBind:
		return "network.bind"
	case KindNetListen:
		return "network.listen"
	case KindNetTCPState:
		return "network.tcp_state"
	case KindPrivSetuid:
		return "privilege.setuid"
	case KindPrivSetgid:
		return "privilege.setgid"
	case KindPrivCapset:
		return "privilege.capset"
	case KindNsSetns:
		return "namespace.setns"
	case KindNsUnshare:
		return "namespace.unshare"
	case KindNsMount:
		return "namespace.mount"
	case KindModuleLoad:
		return "kernel.module_load"
	case KindPtrace:
		return "process.ptrace"
	case KindBPFLoad:
		return "kernel.bpf_load"
	case KindMemfdCreate:
		return "process.memfd_create"
	case KindFork:
		return "process.fork"
	case KindFileLink:
		return "file.link"
	case KindFileSymlink:
		return "file.symlink"
	case KindPrivEscalation:
		return "privilege.escalation"
	case KindShellCommand:
		return "process.shell_command"
	case KindUprobe:
		return "process.uprobe"
	case KindNetSocket:
		return "network.socket"
	case KindFdDup:
		return "process.fd_dup"
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// Flags of an exec record (EXEC_FLAG_* in bpf/events.h).
const (
	FlagFilenameTruncated uint32 = 1 << 0
	FlagArgsTruncated     uint32 = 1 << 1
	FlagArgsFault         uint32 = 1 << 2
	FlagMemfd             uint32 = 1 << 3 // the executable is a memfd: fileless execution
	FlagKilledPath        uint32 = 1 << 4 // enforcement: SIGKILL sent, the filename is a kill path
	FlagKilledComm        uint32 = 1 << 5 // enforcement: SIGKILL sent, the comm is a kill comm
	FlagDrift             uint32 = 1 << 6 // the executable was created or truncated since the probe started
	FlagByFile            uint32 = 1 << 8 // enforcement (kill path or deny) matched the executable's inode, not its path
	FlagTTY               uint32 = 1 << 9 // the process has a controlling terminal
)

// shellFlagTruncated: the shell record's line was cut (SHELL_FLAG_TRUNCATED).
const shellFlagTruncated uint32 = 1 << 0

// Flags of a file record (FILE_FLAG_* in bpf/events.h).
const (
	fileFlagResolved   uint32 = 1 << 0
	fileFlagInodeMatch uint32 = 1 << 1
)

// Flags of a privilege.escalation record (ESCALATION_FLAG_* in bpf/events.h).
const (
	EscalationKilled uint32 = 1 << 0 // enforcement: SIGKILL sent
	EscalationExec   uint32 = 1 << 1 // in an execve whose executable is not set-uid to the new euid
	EscalationCompat uint32 = 1 << 2 // in a 32-bit (ia32) syscall: Syscall is of that table
)

// NoSyscall is an escalation's Syscall when the task was in none.
const NoSyscall = ^uint32(0)

// Hook is the kernel-function hook that sent a record (enum hook_id in
// bpf/events.h); HookNone: a syscall tracepoint.
type Hook uint32

// The hooks of kprobe.bpf.c.
const (
	HookNone             Hook = 0
	HookCommitCreds      Hook = 1
	HookSecurityFileOpen Hook = 2
	HookTCPConnect       Hook = 3
	HookInetCskAccept    Hook = 4
)

var hookNames = [...]string{HookCommitCreds: "commit_creds", HookSecurityFileOpen: "security_file_open",
	HookTCPConnect: "tcp_connect", HookInetCskAccept: "inet_csk_accept"}

// String is the kernel function's name ("" for HookNone).
func (h Hook) String() string {
	if int(h) < len(hookNames) {
		return hookNames[h]
	}
	return fmt.Sprintf("hook(%d)", uint32(h))
}

// Record sizes, taken from the bpf2go types so that a layout change in
// events.h that is not regenerated fails the tests rather than misdecodes.
var (
	headerSize    = int(unsafe.Sizeof(processEventHeader{}))
	execDataOff   = int(unsafe.Offsetof(processExecEvent{}.Data))
	execCwdOffOff = int(unsafe.Offsetof(processExecEvent{}.CwdOff))
	execCwdOff    = int(unsafe.Offsetof(processExecEvent{}.Cwd))
	execExeOffOff = int(unsafe.Offsetof(processExecEvent{}.ExeOff))
	execExeOff    = int(unsafe.Offsetof(processExecEvent{}.Exe))
	execExeInoOff = int(unsafe.Offsetof(processExecEvent{}.ExeIno))
	execExeDevOff = int(unsafe.Offsetof(processExecEvent{}.ExeDev))
	exitSize      = int(unsafe.Sizeof(processExitEvent{}))
	forkSize      = int(unsafe.Sizeof(processForkEvent{}))
	fileDataOff   = int(unsafe.Offsetof(fileFileEvent{}.Data))
	netSize       = int(unsafe.Sizeof(netNetEvent{}))
	privSize      = int(unsafe.Sizeof(privPrivEvent{}))
	// struct escalation_event: the header and eight words. Its bpf2go type is
	// x86-64 only (kprobe_x86_bpfel.go); a test compares the two there.
	escalationSize = headerSize + 32
	shellCmdOff    = int(unsafe.Offsetof(uprobeShellEvent{}.Command))
	uprobeSize     = int(unsafe.Sizeof(uprobeUprobeEvent{}))
	errShort       = errors.New("probe: short record")
	errBadLength   = errors.New("probe: record lengths exceed the record")
)

// Header is the part common to every event.
type Header struct {
	Kind     Kind
	Pid      uint32 // thread id
	Tgid     uint32 // process id
	Ppid     uint32 // parent's process id
	Uid      uint32 // real
	Euid     uint32 // effective
	Gid      uint32 // real
	Egid     uint32 // effective
	MntNs    uint32
	PidNs    uint32
	CgroupID uint64
	Ktime    uint64 // CLOCK_BOOTTIME nanoseconds; see Clock
	Comm     [16]byte
	// StartTime is when the process (its thread group) started, CLOCK_BOOTTIME
	// nanoseconds: with Tgid it names the process across PID reuse.
	StartTime uint64
}

// CommBytes returns the comm without its NUL padding.
func (h *Header) CommBytes() []byte {
	if i := bytes.IndexByte(h.Comm[:], 0); i >= 0 {
		return h.Comm[:i]
	}
	return h.Comm[:]
}

// Event is one decoded record. Filename and Args point into the reader's
// buffer: they are valid until the next Read with the same Reader.
type Event struct {
	Header

	// process.exec
	Flags    uint32
	Argc     uint32
	Filename []byte // without the NUL
	Args     []byte // Argc NUL-terminated strings
	Cwd      []byte // the working directory; nil when unknown
	// Exe is the executable as the kernel resolved it (bprm->file walked up
	// to the process's root; for a script, its interpreter); nil when
	// unknown. ExeInode and ExeDevice name the file.
	Exe       []byte
	ExeInode  uint64
	ExeDevice uint32

	// process.fork: the new process (the header is its parent's)
	ChildTgid uint32
	// process.exit
	ExitCode   uint32
	Signal     uint32
	CoreDumped bool

	// file.*
	Result     int64  // the syscall's return value: an fd or 0, or -errno
	FileFlags  uint32 // open flags; unlinkat, fchownat, fchmodat2: AT_*; renameat2: RENAME_*
	Mode       uint32 // open: the create mode; chmod: the new mode
	Owner      uint32 // chown: the new uid (NoID: unchanged)
	Group      uint32 // chown: the new gid (NoID: unchanged)
	Path       []byte // without the NUL; open: the opened file's path as the kernel resolved it (PathResolved)
	TargetPath []byte // rename: the new path; link: the existing file; symlink: its target (absolute only). No NUL
	RawPath    []byte // open, resolved: the string the caller passed (may be relative, or name a symlink). No NUL
	Inode      uint64 // open, resolved: the opened file's inode
	Device     uint32 // open, resolved: its device (major << 20 | minor, as the kernel encodes it)
	// PathResolved: Path is the opened file's, walked from the kernel's
	// dentries; false for a failed open (and every other file kind), where
	// Path is the caller's string.
	PathResolved bool
	InodeMatch   bool // open: reported because its inode is watched (a hard link to a watched file)
	// open: which file that matters whatever the prefixes this is (0: none),
	// and for SensitiveProcMem and SensitiveProcEnviron the target's tgid.
	Sensitive Sensitive
	TargetPid uint32

	// network.* (and Result). Local is saddr/sport, Remote daddr/dport: see
	// struct net_event in bpf/events.h for what each kind puts there.
	Family     uint16 // unix.AF_INET or unix.AF_INET6 (connect: unix.AF_UNIX too; network.socket, process.fd_dup: any)
	Protocol   uint16 // unix.IPPROTO_TCP, …; 0: unknown
	LocalPort  uint16
	RemotePort uint16
	LocalAddr  [16]byte // AF_INET: the first 4 bytes
	RemoteAddr [16]byte
	Fd         int32
	OldState   int32 // tcp_state: TCP_ESTABLISHED, …
	NewState   int32
	// network.socket, process.fd_dup, and network.connect to a unix socket.
	Socket SocketDetail

	// Hook is the kernel function that saw a file.open, network.connect,
	// network.accept or privilege.escalation no syscall tracepoint saw
	// (HookNone: a syscall tracepoint sent it).
	Hook Hook

	// privilege.escalation: the new ids (the header has the old ones), the
	// syscall the task was in (its number; NoSyscall: none) and
	// Escalation* flags in Flags.
	NewUid, NewEuid, NewGid, NewEgid uint32
	Syscall                          uint32

	// privilege.*, namespace.*, kernel.*, process.ptrace,
	// process.memfd_create (and Result). See struct priv_event in
	// bpf/events.h for what SysArgs, Name, Str1 and Str2 hold per Op.
	Op      Op
	SysArgs [6]uint64
	Name    []byte // without NUL padding
	Str1    []byte
	Str2    []byte

	// process.shell_command: the line an interactive bash read, without
	// its NUL; CommandTruncated: it was longer than ShellCommandMax-1 bytes.
	Command          []byte
	CommandTruncated bool

	// process.uprobe: UprobeIndex names the probe (Probe.Uprobes);
	// UprobeArgs are the raw register values, UprobeStrs the strings read
	// for string arguments (without the NUL). UprobeFlags: bit i, argument
	// i's string was truncated; bit MaxUprobeArgs+i, it was unreadable.
	UprobeIndex uint32
	UprobeFlags uint32
	UprobeArgs  [MaxUprobeArgs]uint64
	UprobeStrs  [MaxUprobeArgs][]byte
}

// UprobeStrTruncated says whether string argument i was cut to UprobeStrMax-1 bytes.
func (e *Event) UprobeStrTruncated(i int) bool { return e.UprobeFlags&(1<<i) != 0 }

// UprobeStrFault says whether string argument i could not be read (a bad pointer, or a page not in memory).
func (e *Event) UprobeStrFault(i int) bool { return e.UprobeFlags&(1<<(MaxUprobeArgs+i)) != 0 }

// ExecCwdMax is the bytes an exec record keeps of the working directory.
const ExecCwdMax = int(unsafe.Sizeof(processExecEvent{}.Cwd))

// ExecExeMax is the bytes an exec record keeps of the executable's resolved path.
const ExecExeMax = int(unsafe.Sizeof(processExecEvent{}.Exe))

// NoID is a chown owner or group left unchanged ((uid_t)-1).
const NoID = ^uint32(0)

// EachArg calls fn with each argument (without its NUL), in order.
func (e *Event) EachArg(fn func(arg []byte)) {
	a := e.Args
	for len(a) > 0 {
		i := bytes.IndexByte(a, 0)
		if i < 0 {
			fn(a)
			return
		}
		fn(a[:i])
		a = a[i+1:]
	}
}

var le = binary.LittleEndian

// Decode parses one ring-buffer record into ev without allocating. The
// objects are compiled for little-endian targets only (bpf2go -target bpfel).
func Decode(raw []byte, ev *Event) error {
	if len(raw) < headerSize {
		return errShort
	}
	h := &ev.Header
	h.Kind = Kind(le.Uint32(raw[0:]))
	h.Pid = le.Uint32(raw[4:])
	h.Tgid = le.Uint32(raw[8:])
	h.Ppid = le.Uint32(raw[12:])
	h.Uid = le.Uint32(raw[16:])
	h.Euid = le.Uint32(raw[20:])
	h.Gid = le.Uint32(raw[24:])
	h.Egid = le.Uint32(raw[28:])
	h.MntNs = le.Uint32(raw[32:])
	h.PidNs = le.Uint32(raw[36:])
	h.CgroupID = le.Uint64(raw[40:])
	h.Ktime = le.Uint64(raw[48:])
	copy(h.Comm[:], raw[56:72])
	ev.Hook = HookNone
	h.StartTime = le.Uint64(raw[72:])

	switch h.Kind {
	case KindExec:
		if len(raw) < execDataOff {
			return errShort
		}
		fl := int(le.Uint32(raw[headerSize:]))
		al := int(le.Uint32(raw[headerSize+4:]))
		ev.Argc = le.Uint32(raw[headerSize+8:])
		ev.Flags = le.Uint32(raw[headerSize+12:])
		data := raw[execDataOff:]
		if fl < 0 || al < 0 || fl+al > len(data) {
			return errBadLength
		}
		ev.Filename = trimNUL(data[:fl])
		ev.Args = data[fl : fl+al]
		ev.Cwd = nil
		if off := int(le.Uint32(raw[execCwdOffOff:])); off < ExecCwdMax {
			ev.Cwd = trimNUL(raw[execCwdOff+off : execCwdOff+ExecCwdMax])
		}
		ev.Exe = nil
		if off := int(le.Uint32(raw[execExeOffOff:])); off < ExecExeMax {
			ev.Exe = trimNUL(raw[execExeOff+off : execExeOff+ExecExeMax])
		}
		ev.ExeInode = le.Uint64(raw[execExeInoOff:])
		ev.ExeDevice = le.Uint32(raw[execExeDevOff:])
		ev.ExitCode, ev.Signal, ev.CoreDumped = 0, 0, false
	case KindExit:
		if len(raw) < exitSize {
			return errShort
		}
		ev.ExitCode = le.Uint32(raw[headerSize:])
		ev.Signal = le.Uint32(raw[headerSize+4:])
		ev.CoreDumped = le.Uint32(raw[headerSize+8:]) != 0
		ev.Flags, ev.Argc, ev.Filename, ev.Args = 0, 0, nil, nil
	case KindPrivEscalation:
		if len(raw) < escalationSize {
			return errShort
		}
		b := raw[headerSize:]
		ev.NewUid = le.Uint32(b)
		ev.NewEuid = le.Uint32(b[4:])
		ev.NewGid = le.Uint32(b[8:])
		ev.NewEgid = le.Uint32(b[12:])
		ev.Syscall = le.Uint32(b[16:])
		ev.Flags = le.Uint32(b[20:])
		ev.Hook = Hook(le.Uint32(b[24:]))
	case KindFork:
		if len(raw) < forkSize {
			return errShort
		}
		ev.ChildTgid = le.Uint32(raw[headerSize:])
	case KindFileOpen, KindFileUnlink, KindFileRename, KindFileChmod, KindFileChown, KindFileLink, KindFileSymlink:
		if len(raw) < fileDataOff {
			return errShort
		}
		ev.Result = int64(le.Uint64(raw[headerSize:]))
		ev.FileFlags = le.Uint32(raw[headerSize+8:])
		ev.Mode = le.Uint32(raw[headerSize+12:])
		ev.Owner = le.Uint32(raw[headerSize+16:])
		ev.Group = le.Uint32(raw[headerSize+20:])
		pl := int(le.Uint32(raw[headerSize+24:]))
		tl := int(le.Uint32(raw[headerSize+28:]))
		ev.Inode = le.Uint64(raw[headerSize+32:])
		ev.Device = le.Uint32(raw[headerSize+40:])
		rl := int(le.Uint32(raw[headerSize+44:]))
		flags := le.Uint32(raw[headerSize+48:])
		ev.PathResolved = flags&fileFlagResolved != 0
		ev.InodeMatch = flags&fileFlagInodeMatch != 0
		ev.Hook = Hook(le.Uint32(raw[headerSize+52:]))
		ev.Sensitive, ev.TargetPid = sensitiveOf(h.Kind, flags, ev.Owner)
		data := raw[fileDataOff:]
		if pl+tl+rl > len(data) {
			return errBadLength
		}
		ev.Path = trimNUL(data[:pl])
		ev.TargetPath = trimNUL(data[pl : pl+tl])
		ev.RawPath = trimNUL(data[pl+tl : pl+tl+rl])
	case KindNetConnect, KindNetAccept, KindNetBind, KindNetListen, KindNetTCPState:
		if len(raw) < netSize {
			return errShort
		}
		b := raw[headerSize:]
		ev.Result = int64(le.Uint64(b))
		ev.Family = le.Uint16(b[8:])
		ev.Protocol = le.Uint16(b[10:])
		ev.LocalPort = le.Uint16(b[12:])
		ev.RemotePort = le.Uint16(b[14:])
		copy(ev.LocalAddr[:], b[16:32])
		copy(ev.RemoteAddr[:], b[32:48])
		ev.Fd = int32(le.Uint32(b[48:]))
		ev.OldState = int32(le.Uint32(b[52:]))
		ev.NewState = int32(le.Uint32(b[56:]))
		ev.Hook = Hook(le.Uint32(b[60:]))
		return decodeUnix(raw, ev)
	case KindNetSocket:
		return decodeSocket(raw, ev)
	case KindFdDup:
		return decodeFdDup(raw, ev)
	case KindPrivSetuid, KindPrivSetgid, KindPrivCapset, KindNsSetns, KindNsUnshare, KindNsMount,
		KindModuleLoad, KindPtrace, KindBPFLoad, KindMemfdCreate:
		if len(raw) < privSize {
			return errShort
		}
		b := raw[headerSize:]
		ev.Result = int64(le.Uint64(b))
		ev.Op = Op(le.Uint32(b[8:]))
		for i := range ev.SysArgs {
			ev.SysArgs[i] = le.Uint64(b[16+8*i:])
		}
		b = b[64:]
		ev.Name = trimNUL(b[:privNameMax])
		ev.Str1 = trimNUL(b[privNameMax : privNameMax+privStrMax])
		ev.Str2 = trimNUL(b[privNameMax+privStrMax : privNameMax+2*privStrMax])
	case KindShellCommand:
		if len(raw) < shellCmdOff {
			return errShort
		}
		n := int(le.Uint32(raw[headerSize:]))
		if n > len(raw)-shellCmdOff {
			return errBadLength
		}
		ev.CommandTruncated = le.Uint32(raw[headerSize+4:])&shellFlagTruncated != 0
		ev.Command = trimNUL(raw[shellCmdOff : shellCmdOff+n])
	case KindUprobe:
		if len(raw) < uprobeSize {
			return errShort
		}
		b := raw[headerSize:]
		ev.UprobeIndex = le.Uint32(b)
		ev.UprobeFlags = le.Uint32(b[4:])
		for i := range ev.UprobeArgs {
			ev.UprobeArgs[i] = le.Uint64(b[8+8*i:])
		}
		b = b[8+8*MaxUprobeArgs:]
		for i := range ev.UprobeStrs {
			ev.UprobeStrs[i] = trimNUL(b[i*UprobeStrMax : (i+1)*UprobeStrMax])
		}
	default:
		return fmt.Errorf("probe: unknown event kind %d", h.Kind)
	}
	return nil
}

func trimNUL(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}
