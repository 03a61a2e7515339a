package probe

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFileLayout(t *testing.T) {
	assert.Equal(t, 136, fileDataOff)
	assert.Equal(t, uintptr(80), unsafe.Offsetof(fileFileEvent{}.Result))
	assert.Equal(t, uintptr(104), unsafe.Offsetof(fileFileEvent{}.PathLen))
	assert.Equal(t, uintptr(112), unsafe.Offsetof(fileFileEvent{}.Ino))
	assert.Equal(t, uintptr(120), unsafe.Offsetof(fileFileEvent{}.Dev))
	assert.Equal(t, uintptr(124), unsafe.Offsetof(fileFileEvent{}.RawLen))
	assert.Equal(t, uintptr(128), unsafe.Offsetof(fileFileEvent{}.FileFlags))
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
	le.PutUint32(raw[headerSize+24:], 2)
	le.PutUint32(raw[headerSize+28:], 0)
	le.PutUint32(raw[headerSize+44:], 3) // the caller's string past the end
	assert.ErrorIs(t, Decode(raw, &ev), errBadLength)
	le.PutUint32(raw[headerSize+44:], 2)
	require.NoError(t, Decode(raw, &ev))
	assert.ErrorIs(t, Decode(raw[:fileDataOff-1], &ev), errShort)
}

// TestFileEvents runs the syscalls from this process on paths below a
// temporary prefix (and one outside it) and reads exactly those records.
func TestFileEvents(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(in, 0o755))
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true,
		FileKinds:    []Kind{KindFileOpen, KindFileUnlink, KindFileRename, KindFileChmod, KindFileChown},
		FilePrefixes: []string{in}})

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

// TestOpenResolvedPaths: an open is judged on the file the kernel opened, not
// on the string that named it. Every spelling of a watched file below is
// reported with its one resolved path, the caller's string beside it, and its
// inode; a hard link elsewhere to a watched file is reported by inode; a
// chrooted thread's open is named as that thread sees it (a container's view).
func TestOpenResolvedPaths(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.MkdirAll(filepath.Join(in, "sub"), 0o755))
	secret := filepath.Join(in, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s"), 0o600))
	var st unix.Stat_t
	require.NoError(t, unix.Stat(secret, &st))
	outside := filepath.Join(dir, "out")
	require.NoError(t, os.Mkdir(outside, 0o755))
	require.NoError(t, os.Symlink(secret, filepath.Join(outside, "link")))
	require.NoError(t, os.Symlink("../in", filepath.Join(outside, "dirlink")))
	require.NoError(t, os.Link(secret, filepath.Join(outside, "hard")))
	// The chroot's own watched directory: a prefix the host does not have.
	jailed := "/k8ssec-jail-" + filepath.Base(dir)
	jail := filepath.Join(dir, "jail")
	require.NoError(t, os.MkdirAll(filepath.Join(jail, jailed), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(jail, jailed, "shadow"), nil, 0o600))

	// The directories for the dirfd cases, opened before the probe sees opens.
	inDir, err := unix.Open(in, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(inDir)
	outDir, err := unix.Open(outside, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(outDir)

	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{in, secret, jailed}})

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())
	mine := func(e *Event) bool { return e.Pid == tid }

	expect := func(t *testing.T, raw string, fd int, err error, flags uint32) {
		t.Helper()
		require.NoError(t, err, raw)
		unix.Close(fd)
		ev := readUntil(t, rd, mine)
		assert.Equal(t, KindFileOpen, ev.Kind, raw)
		assert.Equal(t, secret, string(ev.Path), raw)
		assert.Equal(t, raw, string(ev.RawPath))
		assert.True(t, ev.PathResolved, raw)
		assert.Equal(t, st.Ino, ev.Inode, raw)
		assert.Equal(t, unix.Major(st.Dev)<<20|unix.Minor(st.Dev), ev.Device, raw)
		assert.Equal(t, int64(fd), ev.Result, raw)
		if flags != 0 {
			assert.Equal(t, flags, ev.FileFlags&flags, raw)
		}
	}
	open := func(dirfd int, raw string, flags int) (int, error) { return unix.Openat(dirfd, raw, flags, 0) }

	for _, raw := range []string{
		secret,
		"/" + secret, // //tmp/…/in/secret
		strings.Replace(secret, "/in/", "//in///", 1), // repeated slashes
		filepath.Join(in, "sub") + "/../secret",       // ..
		in + "/./secret",                              // .
		filepath.Join(outside, "link"),                // a symlink to the file
		filepath.Join(outside, "dirlink", "secret"),   // through a symlink to its directory
	} {
		fd, err := open(unix.AT_FDCWD, raw, unix.O_RDONLY)
		expect(t, raw, fd, err, 0)
	}
	fd, err := open(inDir, "secret", unix.O_RDONLY) // dirfd
	expect(t, "secret", fd, err, 0)
	fd, err = open(outDir, "../in/secret", unix.O_RDONLY) // dirfd and ..
	expect(t, "../in/secret", fd, err, 0)
	fd, err = open(unix.AT_FDCWD, secret, unix.O_PATH) // O_PATH: opened, not read
	expect(t, secret, fd, err, unix.O_PATH)
	fd, err = unix.Openat2(outDir, "link", &unix.OpenHow{Flags: unix.O_RDONLY})
	expect(t, "link", fd, err, 0)
	fd, err = unix.Creat(secret, 0o600) // creat(2)
	expect(t, secret, fd, err, unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY)

	// A relative path from the working directory: chdir on this locked
	// thread alone (CLONE_FS unshared), which then dies with its goroutine.
	done := make(chan Event)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with its changed fs
		require.NoError(t, unix.Unshare(unix.CLONE_FS))
		require.NoError(t, unix.Chdir(in))
		tid := uint32(unix.Gettid())
		fd, err := unix.Open("sub/../secret", unix.O_RDONLY, 0)
		require.NoError(t, err)
		unix.Close(fd)
		done <- readUntil(t, rd, func(e *Event) bool { return e.Pid == tid })
	}()
	ev := <-done
	assert.Equal(t, secret, string(ev.Path), "cd in && cat sub/../secret")
	assert.Equal(t, "sub/../secret", string(ev.RawPath))

	// A hard link outside every prefix to a file a prefix names: by inode.
	hard := filepath.Join(outside, "hard")
	fd, err = open(unix.AT_FDCWD, hard, unix.O_RDONLY)
	require.NoError(t, err)
	unix.Close(fd)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, hard, string(ev.Path), "a hard link is its own path")
	assert.True(t, ev.InodeMatch)
	assert.Equal(t, st.Ino, ev.Inode)

	// A failed open opened nothing: the caller's string, when absolute.
	_, err = open(unix.AT_FDCWD, in+"//none", unix.O_RDONLY)
	require.ErrorIs(t, err, unix.ENOENT)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, in+"//none", string(ev.Path))
	assert.False(t, ev.PathResolved)
	assert.Equal(t, -int64(unix.ENOENT), ev.Result)

	// A chrooted thread (a container's root) opens its /k8ssec-jail-…/shadow: reported
	// as it names it, while the host's path of the same file is under no prefix.
	go func() {
		runtime.LockOSThread()
		require.NoError(t, unix.Unshare(unix.CLONE_FS))
		require.NoError(t, unix.Chroot(jail))
		tid := uint32(unix.Gettid())
		fd, err := unix.Open(jailed+"/./shadow", unix.O_RDONLY, 0)
		require.NoError(t, err)
		unix.Close(fd)
		done <- readUntil(t, rd, func(e *Event) bool { return e.Pid == tid })
	}()
	ev = <-done
	assert.Equal(t, jailed+"/shadow", string(ev.Path), "the path from the chroot")
	assert.True(t, ev.PathResolved)

	// Nothing else was reported: an open outside every prefix, of another
	// file, goes by, and the next record is the marker's.
	fd, err = open(unix.AT_FDCWD, filepath.Join(jail, "none-such"), unix.O_RDONLY|unix.O_CREAT)
	require.NoError(t, err)
	unix.Close(fd)
	fd, err = open(unix.AT_FDCWD, secret, unix.O_RDONLY)
	require.NoError(t, err)
	unix.Close(fd)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, secret, string(ev.Path))
	assert.Equal(t, secret, string(ev.RawPath))
}
