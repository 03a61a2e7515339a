package probe

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFileLayout(t *testing.T) {
	assert.Equal(t, 104, fileDataOff)
	assert.Equal(t, uintptr(72), unsafe.Offsetof(fileFileEvent{}.Result))
	assert.Equal(t, uintptr(96), unsafe.Offsetof(fileFileEvent{}.PathLen))
	assert.Equal(t, 4+FilePathMax, int(unsafe.Sizeof(pathKey{})))
	assert.Equal(t, 32, NumKinds)
}

func TestPrefixKeys(t *testing.T) {
	keys, err := prefixKeys("/etc/")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, uint32(40), keys[0].Prefixlen)
	assert.Equal(t, "/etc/\x00", string(keys[0].Data[:6]))
	assert.Equal(t, uint32(40), keys[1].Prefixlen)
	assert.Equal(t, "/etc\x00\x00", string(keys[1].Data[:6]))
	keys, err = prefixKeys("/")
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, uint32(8), keys[0].Prefixlen)
	_, err = prefixKeys("etc")
	assert.ErrorContains(t, err, "absolute")
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 1, FileKinds: []Kind{KindFileOpen}}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 1, FileKinds: []Kind{KindExec}, FilePrefixes: []string{"/etc"}}))
}

func TestDecodeFileRejectsBadLengths(t *testing.T) {
	var ev Event
	raw := make([]byte, fileDataOff+4)
	le.PutUint32(raw, uint32(KindFileRename))
	le.PutUint32(raw[headerSize+24:], 3)
	le.PutUint32(raw[headerSize+28:], 2)
	assert.ErrorIs(t, Decode(raw, &ev), errBadLength)
	assert.ErrorIs(t, Decode(raw[:fileDataOff-1], &ev), errShort)
}

// TestFileEvents runs the syscalls from this process on paths below a
// temporary prefix (and one outside it) and reads exactly those records.
func TestFileEvents(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(in, 0o755))
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true,
		FileKinds:    []Kind{KindFileOpen, KindFileUnlink, KindFileRename, KindFileChmod, KindFileChown},
		FilePrefixes: []string{in}})
	require.NoError(t, err)
	defer p.Close()
	require.Empty(t, p.Unavailable)
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	runtime.LockOSThread() // the records' thread id is this one's
	defer runtime.UnlockOSThread()
	self := uint32(os.Getpid())
	mine := func(e *Event) bool { return e.Tgid == self }
	outside := filepath.Join(dir, "out")
	fd, err := unix.Openat(unix.AT_FDCWD, outside, unix.O_WRONLY|unix.O_CREAT, 0o600)
	require.NoError(t, err)
	unix.Close(fd)

	a, b := filepath.Join(in, "a"), filepath.Join(in, "b")
	fd, err = unix.Openat(unix.AT_FDCWD, a, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o640)
	require.NoError(t, err)
	unix.Close(fd)
	ev := readUntil(t, rd, mine)
	assert.Equal(t, KindFileOpen, ev.Kind, "the open outside the prefix is not reported")
	assert.Equal(t, a, string(ev.Path))
	assert.Equal(t, int64(fd), ev.Result)
	assert.Equal(t, uint32(unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC), ev.FileFlags&^unix.O_LARGEFILE)
	assert.Equal(t, uint32(0o640), ev.Mode)
	assert.Equal(t, uint32(unix.Gettid()), ev.Pid)

	_, err = unix.Openat(unix.AT_FDCWD, filepath.Join(in, "none"), unix.O_RDONLY, 0)
	require.ErrorIs(t, err, unix.ENOENT)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileOpen, ev.Kind)
	assert.Equal(t, -int64(unix.ENOENT), ev.Result)

	require.NoError(t, unix.Renameat(unix.AT_FDCWD, a, unix.AT_FDCWD, b))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileRename, ev.Kind)
	assert.Equal(t, a, string(ev.Path))
	assert.Equal(t, b, string(ev.TargetPath))
	assert.Zero(t, ev.Result)

	require.NoError(t, unix.Fchmodat(unix.AT_FDCWD, b, 0o4755, 0))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileChmod, ev.Kind)
	assert.Equal(t, uint32(0o4755), ev.Mode)
	assert.Equal(t, b, string(ev.Path))

	require.NoError(t, unix.Fchownat(unix.AT_FDCWD, b, 65534, -1, 0))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileChown, ev.Kind)
	assert.Equal(t, uint32(65534), ev.Owner)
	assert.Equal(t, NoID, ev.Group)

	require.NoError(t, unix.Unlinkat(unix.AT_FDCWD, b, 0))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileUnlink, ev.Kind)
	assert.Equal(t, b, string(ev.Path))
	assert.Zero(t, ev.Result)

	// The directory itself matches; a sibling sharing its name as a prefix does not.
	require.NoError(t, os.Mkdir(in+"x", 0o755))
	require.NoError(t, unix.Fchmodat(unix.AT_FDCWD, in+"x", 0o700, 0))
	require.NoError(t, unix.Fchmodat(unix.AT_FDCWD, in, 0o700, 0))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, in, string(ev.Path))

	lost, err := p.LostCounts()
	require.NoError(t, err)
	assert.Zero(t, lost[KindFileOpen])
}

// TestFailingObjectLeavesTheOthersRunning: a file object that fails is
// reported in Unavailable, detached, and the process programs still run;
// when every requested object fails, Load fails.
func TestFailingObjectLeavesTheOthersRunning(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	cfg := Config{RingBufferSize: 1 << 20, MaxArgs: 4, FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{dir},
		SkipFork: true, failObjects: []string{"file"}}
	p, err := Load(cfg)
	require.NoError(t, err)
	defer p.Close()
	require.Contains(t, p.Unavailable, "file")
	assert.NotContains(t, p.Unavailable, "process")
	assert.Nil(t, p.file)
	assert.Empty(t, p.links["file"])
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	fd, err := unix.Openat(unix.AT_FDCWD, filepath.Join(dir, "x"), unix.O_WRONLY|unix.O_CREAT, 0o600)
	require.NoError(t, err)
	unix.Close(fd)
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	pid := uint32(cmd.Process.Pid)
	ev := readUntil(t, rd, func(e *Event) bool {
		return e.Tgid == uint32(os.Getpid()) || (e.Kind == KindExec && e.Tgid == pid)
	})
	assert.Equal(t, KindExec, ev.Kind, "no file record from the failed object")

	cfg.failObjects = []string{"file", "process"}
	_, err = Load(cfg)
	assert.ErrorContains(t, err, "file programs")
	assert.ErrorContains(t, err, "process programs")
}

func TestTracefsHint(t *testing.T) {
	// A directory that is not tracefs stands for a machine without it.
	assert.ErrorContains(t, requireTracefsAt(t.TempDir()), "mount -t tracefs nodev /sys/kernel/tracing")
}
