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
	// NumKinds is the size of the loss array.
	NumKinds = int(processEventKindEVENT_KIND_MAX)
)

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "process.exec"
	case KindExit:
		return "process.exit"
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// Flags of an exec record (EXEC_FLAG_* in bpf/events.h).
const (
	FlagFilenameTruncated uint32 = 1 << 0
	FlagArgsTruncated     uint32 = 1 << 1
	FlagArgsFault         uint32 = 1 << 2
)

// Record sizes, taken from the bpf2go types so that a layout change in
// events.h that is not regenerated fails the tests rather than misdecodes.
var (
	headerSize   = int(unsafe.Sizeof(processEventHeader{}))
	execDataOff  = int(unsafe.Offsetof(processExecEvent{}.Data))
	exitSize     = int(unsafe.Sizeof(processExitEvent{}))
	maxExecSize  = int(unsafe.Sizeof(processExecEvent{}))
	errShort     = errors.New("probe: short record")
	errBadLength = errors.New("probe: exec record lengths exceed the record")
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

	// process.exit
	ExitCode   uint32
	Signal     uint32
	CoreDumped bool
}

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
		ev.ExitCode, ev.Signal, ev.CoreDumped = 0, 0, false
	case KindExit:
		if len(raw) < exitSize {
			return errShort
		}
		ev.ExitCode = le.Uint32(raw[headerSize:])
		ev.Signal = le.Uint32(raw[headerSize+4:])
		ev.CoreDumped = le.Uint32(raw[headerSize+8:]) != 0
		ev.Flags, ev.Argc, ev.Filename, ev.Args = 0, 0, nil, nil
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
