package probe

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

func TestForkLayout(t *testing.T) {
	assert.Equal(t, headerSize+8, forkSize)
	assert.Equal(t, uintptr(16), unsafe.Sizeof(processFileId{}))
}

// TestForkEvents starts a command: its fork is reported with the child's pid,
// and the threads this test process starts are not.
func TestForkEvents(t *testing.T) {
	requireRoot(t)
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true})

	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	self := uint32(os.Getpid())
	ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFork && e.ChildTgid == uint32(cmd.Process.Pid) })
	assert.Equal(t, self, ev.Tgid, "the header is the parent's")
	assert.NotEqual(t, uint32(0), ev.Ppid)
}

// TestLinkEvents makes a hard link and two symlinks under the prefix: each
// is reported with the new name and what it points to (a relative symlink
// target is not read by the kernel: none).
func TestLinkEvents(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true,
		FileKinds: []Kind{KindFileLink, KindFileSymlink}, FilePrefixes: []string{dir}})

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := uint32(os.Getpid())
	mine := func(e *Event) bool { return e.Tgid == self }
	orig := filepath.Join(dir, "orig")
	require.NoError(t, os.WriteFile(orig, nil, 0o600))

	hard := filepath.Join(dir, "hard")
	require.NoError(t, unix.Linkat(unix.AT_FDCWD, orig, unix.AT_FDCWD, hard, 0))
	ev := readUntil(t, rd, mine)
	assert.Equal(t, KindFileLink, ev.Kind)
	assert.Equal(t, hard, string(ev.Path))
	assert.Equal(t, orig, string(ev.TargetPath))
	assert.Equal(t, int64(0), ev.Result)

	soft := filepath.Join(dir, "shadow")
	require.NoError(t, unix.Symlinkat("/etc/shadow", unix.AT_FDCWD, soft))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileSymlink, ev.Kind)
	assert.Equal(t, soft, string(ev.Path))
	assert.Equal(t, "/etc/shadow", string(ev.TargetPath))

	rel := filepath.Join(dir, "rel")
	require.NoError(t, os.Symlink("orig", rel))
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileSymlink, ev.Kind)
	assert.Equal(t, rel, string(ev.Path))
	assert.Empty(t, ev.TargetPath)

	require.ErrorIs(t, unix.Linkat(unix.AT_FDCWD, orig, unix.AT_FDCWD, hard, 0), unix.EEXIST)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, KindFileLink, ev.Kind)
	assert.Equal(t, -int64(unix.EEXIST), ev.Result)
}

// TestDriftFlag copies a binary with O_CREAT (outside every prefix of
// interest: drift does not depend on them), runs it, and runs the original:
// only the copy's exec carries the drift flag. A file written over in place
// (O_TRUNC) is drift too.
func TestDriftFlag(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 4, FileKinds: []Kind{KindFileOpen},
		FilePrefixes: []string{"/nonexistent-prefix"}})

	orig, err := os.ReadFile("/bin/true")
	require.NoError(t, err)
	copied := filepath.Join(dir, "dropped")
	require.NoError(t, os.WriteFile(copied, orig, 0o755))
	execOf := func(path string) Event {
		cmd := exec.Command(path)
		require.NoError(t, cmd.Run())
		return readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == uint32(cmd.Process.Pid) })
	}
	assert.NotZero(t, execOf(copied).Flags&FlagDrift, "a binary written after the probe started")
	assert.Zero(t, execOf("/bin/true").Flags&FlagDrift, "a binary that was there before")

	// Made before the probe: not drift, until it is written over in place.
	old := filepath.Join(dir, "old")
	require.NoError(t, exec.Command("cp", "--preserve=mode", "/bin/true", old).Run())
	p2, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 4, FileKinds: []Kind{KindFileOpen},
		FilePrefixes: []string{"/nonexistent-prefix"}})
	require.NoError(t, err)
	p.Close()
	defer p2.Close()
	rd.Close()
	rd, err = p2.NewReader()
	require.NoError(t, err)
	defer rd.Close()
	assert.Zero(t, execOf(old).Flags&FlagDrift, "made before this probe started")
	f, err := os.OpenFile(old, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.Write(orig)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.NotZero(t, execOf(old).Flags&FlagDrift, "written over in place")
}

// TestForkOfEveryFlavour: a new process is reported however it was made,
// since sched_process_fork fires in kernel_clone for each: clone3 (Go's
// exec with a cgroup fd: CLONE_VFORK|CLONE_INTO_CGROUP), clone with SIGCHLD
// only (perl's fork, glibc's), and vfork (dash runs its commands with it).
func TestForkOfEveryFlavour(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"/usr/bin/perl", "/bin/dash"} {
		_, err := os.Stat(tool)
		testenv.Require(t, err == nil, tool+" makes the fork() and vfork() of this test")
	}
	root := "/sys/fs/cgroup"
	if _, err := os.Stat(root + "/unified/cgroup.procs"); err == nil {
		root += "/unified"
	}
	cg, err := os.MkdirTemp(root, "k8ssec-fork-")
	require.NoError(t, err)
	defer os.Remove(cg)
	cgFd, err := os.Open(cg)
	require.NoError(t, err)
	defer cgFd.Close()
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true})
	self := uint32(os.Getpid())

	clone3 := exec.Command("/bin/true")
	clone3.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgFd.Fd())}
	require.NoError(t, clone3.Run())
	ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFork && e.ChildTgid == uint32(clone3.Process.Pid) })
	assert.Equal(t, self, ev.Tgid, "clone3")

	perl := exec.Command("/usr/bin/perl", "-e", `$p = fork(); exit 0 if $p == 0; waitpid($p, 0); print $p`)
	out, err := perl.Output()
	require.NoError(t, err)
	child, err := strconv.Atoi(string(out))
	require.NoError(t, err, "perl printed %q", out)
	ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFork && e.ChildTgid == uint32(child) })
	assert.Equal(t, uint32(perl.Process.Pid), ev.Tgid, "clone (fork)")

	dash := exec.Command("/bin/dash", "-c", "/bin/true; /bin/true")
	require.NoError(t, dash.Run())
	for range 2 {
		ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFork && e.Tgid == uint32(dash.Process.Pid) })
		assert.NotZero(t, ev.ChildTgid, "vfork")
	}
}

// TestForkCloneParentOnly: with process.fork records off, only a fork whose
// child's parent is not the forker (CLONE_PARENT, as runc's init stages are
// made) is reported, with the forker's header; an ordinary fork is not.
func TestForkCloneParentOnly(t *testing.T) {
	requireRoot(t)
	_, err := os.Stat("/usr/bin/perl")
	testenv.Require(t, err == nil, "/usr/bin/perl makes the clone(CLONE_PARENT) of this test")
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExit: true, SkipFork: true, ForkCloneParentOnly: true})

	// clone(CLONE_PARENT|SIGCHLD): the child is this test's, not perl's.
	perl := exec.Command("/usr/bin/perl", "-e", `$p = syscall(56, 0x8000|17, 0, 0, 0, 0); if ($p == 0) { require POSIX; POSIX::_exit(0) } print $p`)
	out, err := perl.Output()
	require.NoError(t, err)
	child, err := strconv.Atoi(string(out))
	require.NoError(t, err, "perl printed %q", out)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(child, &ws, 0, nil) // this test is its parent: reap it
	var forks []uint32
	ev := readUntil(t, rd, func(e *Event) bool {
		if e.Kind == KindFork {
			forks = append(forks, e.ChildTgid)
		}
		return e.Kind == KindFork && e.ChildTgid == uint32(child)
	})
	assert.Equal(t, uint32(perl.Process.Pid), ev.Tgid, "the header is the forker's")
	assert.NotContains(t, forks, uint32(perl.Process.Pid), "this test's ordinary fork of perl is not reported")
}
