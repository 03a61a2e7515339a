package podidentity

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// fileIDKernfs is the file handle type of kernfs (cgroup2) nodes: the handle's
// 8 bytes are the node id, which is the cgroup id the BPF programs report.
const fileIDKernfs = 0xfe

// cgroupHandles opens a cgroup by its id with open_by_handle_at(2), so a
// cgroup created a moment ago is named at its first event, without walking
// the hierarchy. It needs CAP_DAC_READ_SEARCH (the agent's DaemonSet grants
// it); without it, or on a kernel that refuses, the resolver falls back to
// walks.
type cgroupHandles struct {
	mu         sync.RWMutex // held for reading while mountFD is in use; close takes it
	mountFD    int          // the cgroup2 mount's directory; -1 once closed
	mount      string       // its path, stripped from what /proc/self/fd resolves to
	rootPrefix string       // the mount's root in the hierarchy
}

func openCgroupHandles(mount, rootPrefix string) (*cgroupHandles, error) {
	// Not O_PATH: open_by_handle_at refuses an O_PATH mount fd (EBADF).
	fd, err := unix.Open(mount, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &cgroupHandles{mountFD: fd, mount: filepath.Clean(mount), rootPrefix: rootPrefix}, nil
}

func (h *cgroupHandles) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mountFD >= 0 {
		_ = unix.Close(h.mountFD)
		h.mountFD = -1
	}
}

// errHandlesUnsupported: the kernel or our privileges refuse handles at all;
// the caller stops trying them.
var errHandlesUnsupported = errors.New("podidentity: open_by_handle_at unavailable")

// path returns the hierarchy path of cgroup id; ok is false when no cgroup
// has that id now (it is gone, or never was).
func (h *cgroupHandles) path(id uint64) (path string, ok bool, err error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.mountFD < 0 {
		return "", false, errHandlesUnsupported
	}
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], id)
	fd, err := unix.OpenByHandleAt(h.mountFD, unix.NewFileHandle(fileIDKernfs, b[:]), unix.O_PATH|unix.O_CLOEXEC)
	switch {
	case errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT):
		return "", false, nil
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EBADF):
		return "", false, errHandlesUnsupported
	case err != nil:
		return "", false, err
	}
	defer unix.Close(fd)
	abs, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", false, err
	}
	below, found := strings.CutPrefix(abs, h.mount)
	if !found || (below != "" && below[0] != '/') {
		// Outside the mount we hold (another cgroup namespace's view): let a walk decide.
		return "", false, errors.New("podidentity: cgroup " + abs + " is outside " + h.mount)
	}
	if below == "" {
		return h.rootPrefix, true, nil
	}
	return filepath.Join(h.rootPrefix, below), true, nil
}
