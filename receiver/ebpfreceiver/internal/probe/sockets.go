package probe

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SocketDetail is what network.socket, process.fd_dup and a network.connect
// to a unix socket add to a record (struct socket_event, fd_dup_event and
// net_unix_event in bpf/events.h). Family, Protocol, the ports and addresses
// are Event's.
type SocketDetail struct {
	Type uint32 // SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_PACKET, …

	// process.fd_dup
	OldFd, NewFd int32
	DupOp        DupOp

	// network.connect, AF_UNIX: the socket reached. Path points into the
	// reader's buffer. Abstract: a name in the abstract namespace (it may
	// hold NULs). Resolved: the socket the kernel reached, named by its own
	// path (walked from its dentry) or abstract name; false: nothing was
	// reached (a failed connect) and Path is the caller's string.
	Path     []byte
	Abstract bool
	Resolved bool
}

// DupOp is the call that duplicated a socket onto fd 0-2 (enum dup_op).
type DupOp uint32

// The duplicating calls.
const (
	DupOpDup   DupOp = 1
	DupOpDup2  DupOp = 2
	DupOpDup3  DupOp = 3
	DupOpFcntl DupOp = 4
)

func (o DupOp) String() string {
	switch o {
	case DupOpDup:
		return "dup"
	case DupOpDup2:
		return "dup2"
	case DupOpDup3:
		return "dup3"
	case DupOpFcntl:
		return "fcntl"
	}
	return ""
}

// Sensitive is a file reported whatever the prefixes (enum file_sensitive).
type Sensitive uint8

// The sensitive files.
const (
	SensitiveReleaseAgent    Sensitive = 1 // cgroup v1 release_agent, opened for writing
	SensitiveNotifyOnRelease Sensitive = 2 // cgroup v1 notify_on_release, opened for writing
	SensitiveCorePattern     Sensitive = 3 // /proc/sys/kernel/core_pattern, opened for writing
	SensitiveProcMem         Sensitive = 4 // /proc/<pid>/mem (or task/<tid>/mem)
	SensitiveProcEnviron     Sensitive = 5 // /proc/<pid>/environ (or task/<tid>/environ)
	SensitiveKcore           Sensitive = 6 // /proc/kcore
)

func (s Sensitive) String() string {
	switch s {
	case SensitiveReleaseAgent:
		return "release_agent"
	case SensitiveNotifyOnRelease:
		return "notify_on_release"
	case SensitiveCorePattern:
		return "core_pattern"
	case SensitiveProcMem:
		return "proc_mem"
	case SensitiveProcEnviron:
		return "proc_environ"
	case SensitiveKcore:
		return "kcore"
	}
	return ""
}

const (
	fileSensitiveShift = 24 // FILE_SENSITIVE_SHIFT
	unixFlagResolved   = 1 << 0
	unixFlagAbstract   = 1 << 1
)

var (
	unixPathOff   = int(unsafe.Offsetof(netNetUnixEvent{}.Path))
	unixPathMax   = int(unsafe.Sizeof(netNetUnixEvent{}.Path))
	socketSize    = int(unsafe.Sizeof(netSocketEvent{}))
	fdDupSize     = int(unsafe.Sizeof(netFdDupEvent{}))
	fdDupSaddrOff = int(unsafe.Offsetof(netFdDupEvent{}.Saddr))
)

// sensitiveOf decodes an open's sensitive kind and, for the /proc/<pid> ones,
// its target (kept in the record's owner, which an open has no other use for).
func sensitiveOf(kind Kind, fileFlags, owner uint32) (Sensitive, uint32) {
	if kind != KindFileOpen {
		return 0, 0
	}
	s := Sensitive(fileFlags >> fileSensitiveShift)
	if s == SensitiveProcMem || s == SensitiveProcEnviron {
		return s, owner
	}
	return s, 0
}

// decodeUnix reads the name after a network.connect record of an AF_UNIX
// socket; for other families it clears the socket detail.
func decodeUnix(raw []byte, ev *Event) error {
	ev.Socket = SocketDetail{}
	if ev.Kind != KindNetConnect || ev.Family != unix.AF_UNIX {
		return nil
	}
	if len(raw) < unixPathOff {
		return errShort
	}
	b := raw[netSize:]
	n := int(le.Uint32(b))
	flags := le.Uint32(b[4:])
	ev.Socket.Type = le.Uint32(b[8:])
	if n > unixPathMax || unixPathOff+n > len(raw) {
		return errBadLength
	}
	ev.Socket.Path = raw[unixPathOff : unixPathOff+n]
	ev.Socket.Abstract = flags&unixFlagAbstract != 0
	ev.Socket.Resolved = flags&unixFlagResolved != 0
	return nil
}

func decodeSocket(raw []byte, ev *Event) error {
	if len(raw) < socketSize {
		return errShort
	}
	b := raw[headerSize:]
	ev.Result = int64(le.Uint64(b))
	ev.Family = uint16(le.Uint32(b[8:]))
	ev.Socket = SocketDetail{Type: le.Uint32(b[12:])}
	ev.Protocol = uint16(le.Uint32(b[16:]))
	return nil
}

func decodeFdDup(raw []byte, ev *Event) error {
	if len(raw) < fdDupSize {
		return errShort
	}
	b := raw[headerSize:]
	ev.Result = int64(le.Uint64(b))
	ev.Socket = SocketDetail{
		OldFd: int32(le.Uint32(b[8:])),
		NewFd: int32(le.Uint32(b[12:])),
		DupOp: DupOp(le.Uint32(b[16:])),
		Type:  le.Uint32(b[24:]),
	}
	ev.Family = le.Uint16(b[20:])
	ev.Protocol = le.Uint16(b[22:])
	ev.LocalPort = le.Uint16(b[28:])
	ev.RemotePort = le.Uint16(b[30:])
	copy(ev.LocalAddr[:], raw[fdDupSaddrOff:fdDupSaddrOff+16])
	copy(ev.RemoteAddr[:], raw[fdDupSaddrOff+16:fdDupSaddrOff+32])
	return nil
}
