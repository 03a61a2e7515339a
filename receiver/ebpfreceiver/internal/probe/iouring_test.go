package probe

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring, from the raw syscalls: enough to open, connect and
// accept without the syscalls the tracepoints watch.

// uringParams is struct io_uring_params (120 bytes).
type uringParams struct {
	SqEntries, CqEntries, Flags, SqThreadCPU, SqThreadIdle, Features, WqFd uint32
	Resv                                                                   [3]uint32
	SqOff                                                                  struct {
		Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
		UserAddr                                                        uint64
	}
	CqOff struct {
		Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1 uint32
		UserAddr                                                        uint64
	}
}

// The io_uring opcodes used (include/uapi/linux/io_uring.h).
const (
	uringOpAccept  = 13
	uringOpConnect = 16
	uringOpOpenat  = 18
)

type uring struct {
	fd           int
	p            uringParams
	sq, cq, sqes []byte
}

func newUring() (*uring, error) {
	r := &uring{}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 8, uintptr(unsafe.Pointer(&r.p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r.fd = int(fd)
	var err error
	mmap := func(off int64, size uint32) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = unix.Mmap(r.fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		return b
	}
	r.sq = mmap(0, r.p.SqOff.Array+r.p.SqEntries*4)
	r.cq = mmap(0x8000000, r.p.CqOff.Cqes+r.p.CqEntries*16)
	r.sqes = mmap(0x10000000, r.p.SqEntries*64)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("mapping the rings: %w", err)
	}
	return r, nil
}

func (r *uring) Close() {
	for _, b := range [][]byte{r.sq, r.cq, r.sqes} {
		if b != nil {
			_ = unix.Munmap(b)
		}
	}
	unix.Close(r.fd)
}

func (r *uring) u32(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// sqe is one submission: opcode, fd, addr, off (addr2), len and the op's flags.
type sqe struct {
	op            uint8
	fd            int32
	addr, off     uint64
	length, flags uint32
	userData      uint64
}

// do submits the entries and waits for as many completions; it returns their
// results by user data. The calling goroutine stays on its thread meanwhile,
// so that the completions' task_work runs in this io_uring_enter.
func (r *uring) do(entries ...sqe) (map[uint64]int32, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mask := *r.u32(r.sq, r.p.SqOff.RingMask)
	for _, e := range entries {
		tail := atomic.LoadUint32(r.u32(r.sq, r.p.SqOff.Tail))
		idx := tail & mask
		s := r.sqes[idx*64 : idx*64+64]
		clear(s)
		s[0] = e.op
		binary.LittleEndian.PutUint32(s[4:], uint32(e.fd))
		binary.LittleEndian.PutUint64(s[8:], e.off)
		binary.LittleEndian.PutUint64(s[16:], e.addr)
		binary.LittleEndian.PutUint32(s[24:], e.length)
		binary.LittleEndian.PutUint32(s[28:], e.flags)
		binary.LittleEndian.PutUint64(s[32:], e.userData)
		*r.u32(r.sq, r.p.SqOff.Array+idx*4) = idx
		atomic.StoreUint32(r.u32(r.sq, r.p.SqOff.Tail), tail+1)
	}
	const enterGetEvents = 1
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(len(entries)), uintptr(len(entries)), enterGetEvents, 0, 0); errno != 0 {
		return nil, fmt.Errorf("io_uring_enter: %w", errno)
	}
	out := map[uint64]int32{}
	cmask := *r.u32(r.cq, r.p.CqOff.RingMask)
	for len(out) < len(entries) {
		head := atomic.LoadUint32(r.u32(r.cq, r.p.CqOff.Head))
		if head == atomic.LoadUint32(r.u32(r.cq, r.p.CqOff.Tail)) {
			if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, 1, enterGetEvents, 0, 0); errno != 0 {
				return nil, fmt.Errorf("io_uring_enter: %w", errno)
			}
			continue
		}
		c := r.cq[r.p.CqOff.Cqes+(head&cmask)*16:]
		out[binary.LittleEndian.Uint64(c)] = int32(binary.LittleEndian.Uint32(c[8:]))
		atomic.StoreUint32(r.u32(r.cq, r.p.CqOff.Head), head+1)
	}
	return out, nil
}

// openat opens path (relative to the working directory) through the ring.
func (r *uring) openat(path string, flags uint32) (int, error) {
	p := append([]byte(path), 0)
	res, err := r.do(sqe{op: uringOpOpenat, fd: unix.AT_FDCWD, addr: uint64(uintptr(unsafe.Pointer(&p[0]))), flags: flags, userData: 1})
	runtime.KeepAlive(p)
	if err != nil {
		return -1, err
	}
	if res[1] < 0 {
		return -1, fmt.Errorf("io_uring openat: %w", unix.Errno(-res[1]))
	}
	return int(res[1]), nil
}

// connectAccept connects client to 127.0.0.1:port and accepts on listener,
// both through the ring in one submission; it returns the accepted fd.
func (r *uring) connectAccept(listener, client int, port int) (int, error) {
	var sa [16]byte // struct sockaddr_in
	binary.LittleEndian.PutUint16(sa[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(sa[2:], uint16(port))
	copy(sa[4:], []byte{127, 0, 0, 1})
	res, err := r.do(
		sqe{op: uringOpAccept, fd: int32(listener), flags: unix.SOCK_CLOEXEC, userData: 1},
		sqe{op: uringOpConnect, fd: int32(client), addr: uint64(uintptr(unsafe.Pointer(&sa[0]))), off: uint64(len(sa)), userData: 2},
	)
	runtime.KeepAlive(&sa)
	if err != nil {
		return -1, err
	}
	if res[2] < 0 {
		return -1, fmt.Errorf("io_uring connect: %w", unix.Errno(-res[2]))
	}
	if res[1] < 0 {
		return -1, fmt.Errorf("io_uring accept: %w", unix.Errno(-res[1]))
	}
	return int(res[1]), nil
}
