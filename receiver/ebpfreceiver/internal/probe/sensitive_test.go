package probe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// sensitiveOpen is one open the test makes, and what it must be reported as
// (0: not reported).
type sensitiveOpen struct {
	path   string
	flags  int
	want   Sensitive
	target int    // proc_mem, proc_environ: the target's tgid
	named  string // the resolved path expected; "" : path
}

// TestSensitiveOpens: with prefixes that cover none of them, opens of
// another process's mem, its own environ (through /proc/self and through
// task/<tid>), kcore, and core_pattern for writing are reported and marked;
// /proc/self/status and core_pattern read-only are not. Each is checked in
// order, so that an open that should not be reported and is shows up as the
// wrong record.
func TestSensitiveOpens(t *testing.T) {
	requireRoot(t)
	sleep := exec.Command("/bin/sleep", "30")
	require.NoError(t, sleep.Start())
	defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
	child := sleep.Process.Pid

	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{t.TempDir()}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, tid := os.Getpid(), unix.Gettid()

	opens := []sensitiveOpen{
		{"/proc/self/status", unix.O_RDONLY, 0, 0, ""},
		{"/proc/self/environ", unix.O_RDONLY, SensitiveProcEnviron, self, fmt.Sprintf("/proc/%d/environ", self)},
		{fmt.Sprintf("/proc/%d/mem", child), unix.O_RDONLY, SensitiveProcMem, child, ""},
		{fmt.Sprintf("/proc/self/task/%d/mem", tid), unix.O_RDONLY, SensitiveProcMem, self, fmt.Sprintf("/proc/%d/task/%d/mem", self, tid)},
		{"/proc/sys/kernel/core_pattern", unix.O_RDONLY, 0, 0, ""},
		{"/proc/sys/kernel/core_pattern", unix.O_WRONLY, SensitiveCorePattern, 0, ""},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		opens = append(opens, sensitiveOpen{"/proc/kcore", unix.O_RDONLY, SensitiveKcore, 0, ""})
	} else {
		t.Logf("no /proc/kcore on this kernel (CONFIG_PROC_KCORE): not tested")
	}
	// A symlink elsewhere to core_pattern is core_pattern: the kernel's file is judged.
	link := filepath.Join(t.TempDir(), "cp")
	require.NoError(t, os.Symlink("/proc/sys/kernel/core_pattern", link))
	opens = append(opens, sensitiveOpen{link, unix.O_WRONLY, SensitiveCorePattern, 0, "/proc/sys/kernel/core_pattern"})
	checkSensitiveOpens(t, rd, uint32(tid), opens)
}

// TestCgroupV1ReleaseFiles mounts a named cgroup v1 hierarchy (no
// controllers) and opens its release_agent and notify_on_release for writing
// (reported) and for reading (not), without writing anything.
func TestCgroupV1ReleaseFiles(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	name := "k8ssectest" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	err := unix.Mount("cgroup", dir, "cgroup", 0, "none,name="+name)
	testenv.Require(t, err == nil, fmt.Sprintf("mounting a cgroup v1 hierarchy (%v): this kernel lacks CONFIG_CGROUP_V1 or refuses it", err))
	defer func() { require.NoError(t, unix.Unmount(dir, 0)) }()
	sub := filepath.Join(dir, "child")
	require.NoError(t, os.Mkdir(sub, 0o755))
	defer os.Remove(sub)

	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{t.TempDir()}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	checkSensitiveOpens(t, rd, uint32(unix.Gettid()), []sensitiveOpen{
		{filepath.Join(dir, "release_agent"), unix.O_RDONLY, 0, 0, ""},
		{filepath.Join(dir, "release_agent"), unix.O_WRONLY, SensitiveReleaseAgent, 0, ""},
		{filepath.Join(sub, "notify_on_release"), unix.O_RDONLY, 0, 0, ""},
		{filepath.Join(sub, "notify_on_release"), unix.O_WRONLY, SensitiveNotifyOnRelease, 0, ""},
		{filepath.Join(dir, "tasks"), unix.O_WRONLY, 0, 0, ""},
		{filepath.Join(dir, "notify_on_release"), unix.O_RDWR, SensitiveNotifyOnRelease, 0, ""},
	})
}

// checkSensitiveOpens opens (and closes, writing nothing) each file on this
// thread, then reads the records: one per open that wants one, in order.
func checkSensitiveOpens(t *testing.T, rd *Reader, tid uint32, opens []sensitiveOpen) {
	t.Helper()
	for _, o := range opens {
		fd, err := unix.Open(o.path, o.flags|unix.O_CLOEXEC, 0)
		require.NoError(t, err, o.path)
		unix.Close(fd)
	}
	for _, o := range opens {
		if o.want == 0 {
			continue
		}
		ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFileOpen && e.Pid == tid })
		named := o.path
		if o.named != "" {
			named = o.named
		}
		assert.Equal(t, o.want, ev.Sensitive, "%s: a skipped open would show here", o.path)
		assert.Equal(t, named, string(ev.Path))
		assert.True(t, ev.PathResolved)
		assert.Equal(t, uint32(o.target), ev.TargetPid, o.path)
		assert.Equal(t, uint32(o.flags|unix.O_CLOEXEC), ev.FileFlags&^unix.O_LARGEFILE, o.path)
	}
}
