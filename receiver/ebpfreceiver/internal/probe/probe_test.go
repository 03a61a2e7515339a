package probe

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	testenv.RequireRoot(tb, "loading BPF programs")
	mountTracefs(tb)
}

// mountTracefs mounts tracefs where the syscalls tracepoints need it, when a
// fresh machine has not: the tests exercise the file programs, not the hint.
func mountTracefs(tb testing.TB) {
	tb.Helper()
	if requireTracefs() == nil {
		return
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		tb.Logf("mounting tracefs: %v (the file programs will be unavailable)", err)
	}
}

func TestLayout(t *testing.T) {
	// events.h promises no implicit padding; Decode relies on these offsets.
	assert.Equal(t, 80, headerSize)
	assert.Equal(t, 632, execDataOff) // the fixed part: cwd, exe and its inode included
	assert.Equal(t, 96, exitSize)
	assert.Equal(t, uintptr(56), unsafe.Offsetof(processEventHeader{}.Comm))
	assert.Equal(t, uintptr(48), unsafe.Offsetof(processEventHeader{}.Ktime))
	assert.Equal(t, uintptr(72), unsafe.Offsetof(processEventHeader{}.StartTime))
	assert.Equal(t, uintptr(80), unsafe.Offsetof(processExitEvent{}.ExitCode))
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	var ev Event
	assert.Error(t, Decode(make([]byte, 10), &ev))
	raw := make([]byte, execDataOff+4)
	le.PutUint32(raw, uint32(KindExec))
	le.PutUint32(raw[headerSize:], 3)
	le.PutUint32(raw[headerSize+4:], 3)
	assert.ErrorIs(t, Decode(raw, &ev), errBadLength)
	le.PutUint32(raw, 77)
	assert.Error(t, Decode(raw, &ev))
}

func TestCheckConfig(t *testing.T) {
	assert.Error(t, checkConfig(Config{RingBufferSize: 5000, MaxArgs: 4}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 1024, MaxArgs: 4}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 0}))
	assert.NoError(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: MaxArgsCap}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 4, KillPaths: []string{"bin/sh"}}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 4, KillPaths: []string{"/" + strings.Repeat("x", ExecFilenameMax-1)}}))
	assert.Error(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 4, KillComms: []string{""}}))
	assert.NoError(t, checkConfig(Config{RingBufferSize: 4096, MaxArgs: 4, KillPaths: []string{"/" + strings.Repeat("x", ExecFilenameMax-2)}, KillComms: []string{"nc"}}))
	assert.Equal(t, [16]byte{'a', 'b', 'c'}, CommKey("abc"))
	assert.Equal(t, "0123456789abcde\x00", string(func() []byte { k := CommKey("0123456789abcdefgh"); return k[:] }()))
}

// TestEnforcementNeedsExec: enforcement without the exec program refuses to
// load rather than run without killing.
func TestEnforcementNeedsExec(t *testing.T) {
	requireRoot(t)
	_, err := Load(Config{RingBufferSize: 4096, MaxArgs: 4, SkipExec: true, KillComms: []string{"k8ssec-none"}})
	assert.ErrorContains(t, err, "enforcement")
	_, err = Load(Config{RingBufferSize: 4096, MaxArgs: 4, KillComms: []string{"k8ssec-none"}, failObjects: []string{"process"}})
	assert.ErrorContains(t, err, "enforcement")
	p, err := Load(Config{RingBufferSize: 4096, MaxArgs: 4, KillComms: []string{"k8ssec-none"}})
	require.NoError(t, err)
	defer p.Close()
	n, err := p.KillCount()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// readUntil reads events until match returns true for one, or fails after 10s.
// loadReading loads cfg, every object of it, and opens its reader; both are
// closed when the test ends.
func loadReading(t *testing.T, cfg Config) (*Probe, *Reader) {
	t.Helper()
	p, err := Load(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	require.Empty(t, p.Unavailable)
	rd, err := p.NewReader()
	require.NoError(t, err)
	t.Cleanup(func() { rd.Close() })
	return p, rd
}

func readUntil(t *testing.T, rd *Reader, match func(*Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	rd.SetDeadline(deadline)
	for {
		var ev Event
		err := rd.Read(&ev)
		require.NoError(t, err, "no matching event before the deadline")
		if match(&ev) {
			// Copy out what points into the reader's buffer.
			ev.Filename = append([]byte(nil), ev.Filename...)
			ev.Args = append([]byte(nil), ev.Args...)
			ev.Path = append([]byte(nil), ev.Path...)
			ev.TargetPath = append([]byte(nil), ev.TargetPath...)
			ev.RawPath = append([]byte(nil), ev.RawPath...)
			return ev
		}
	}
}

func TestExecAndExit(t *testing.T) {
	requireRoot(t)
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 3})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	clock := NewClock()
	before := time.Now()
	cmd := exec.Command("/bin/sh", "-c", "exit 3", "arg0", "extra1", "extra2")
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	pid := uint32(cmd.Process.Pid)

	ex := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == pid })
	assert.Equal(t, "/bin/sh", string(ex.Filename))
	assert.Equal(t, uint32(os.Getpid()), ex.Ppid)
	assert.Equal(t, pid, ex.Pid)
	assert.Equal(t, "sh", string(ex.CommBytes()))
	assert.Equal(t, uint32(os.Getuid()), ex.Uid)
	assert.Equal(t, uint32(os.Geteuid()), ex.Euid)
	assert.Equal(t, uint32(os.Getgid()), ex.Gid)
	assert.Equal(t, uint32(3), ex.Argc, "max_args 3 of 6")
	var args []string
	ex.EachArg(func(a []byte) { args = append(args, string(a)) })
	assert.Equal(t, []string{"/bin/sh", "-c", "exit 3"}, args)
	assert.NotZero(t, ex.Flags&FlagArgsTruncated)
	assert.NotZero(t, ex.CgroupID)
	assert.NotZero(t, ex.MntNs)
	assert.NotZero(t, ex.PidNs)
	selfMnt, _ := os.Readlink("/proc/self/ns/mnt")
	assert.Contains(t, selfMnt, "["+itoa(ex.MntNs)+"]")
	selfPid, _ := os.Readlink("/proc/self/ns/pid")
	assert.Contains(t, selfPid, "["+itoa(ex.PidNs)+"]")
	wall := clock.Wall(ex.Ktime)
	assert.WithinDuration(t, before, wall, 2*time.Second)

	xt := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExit && e.Tgid == pid })
	assert.Equal(t, uint32(3), xt.ExitCode)
	assert.Zero(t, xt.Signal)
	assert.Equal(t, "sh", string(xt.CommBytes()))
	assert.GreaterOrEqual(t, xt.Ktime, ex.Ktime)

	lost, err := p.LostCounts()
	require.NoError(t, err)
	assert.Zero(t, lost[KindExec])
}

func TestExitBySignal(t *testing.T) {
	requireRoot(t)
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 16})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	cmd := exec.Command("/bin/sh", "-c", "kill -KILL $$")
	_ = cmd.Run()
	pid := uint32(cmd.Process.Pid)
	xt := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExit && e.Tgid == pid })
	assert.Equal(t, uint32(9), xt.Signal)
	assert.Zero(t, xt.ExitCode)
}

func TestLongArgumentsAreBounded(t *testing.T) {
	requireRoot(t)
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: MaxArgsCap})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	long := strings.Repeat("x", 3000)
	cmd := exec.Command("/bin/true", long, long, "tail")
	require.NoError(t, cmd.Run())
	pid := uint32(cmd.Process.Pid)
	ex := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == pid })
	assert.NotZero(t, ex.Flags&FlagArgsTruncated)
	assert.LessOrEqual(t, len(ex.Args), MaxExecArgBytes+1024)
	var args []string
	ex.EachArg(func(a []byte) { args = append(args, string(a)) })
	// A 3000-byte argument keeps its first 1023 bytes, and argv stops there.
	require.Len(t, args, 2)
	assert.Equal(t, uint32(2), ex.Argc)
	assert.Equal(t, "/bin/true", args[0])
	assert.Equal(t, long[:1023], args[1])
}

func TestErrorsSayWhatToDo(t *testing.T) {
	assert.Contains(t, explainErrno(unix.EPERM).Error(), "CAP_BPF")
	assert.Contains(t, explainErrno(unix.ENOMEM).Error(), "ring_buffer_size")
	_, err := openCgroup2("/proc")
	assert.ErrorContains(t, err, "mount -t cgroup2")
	// A kernel before 5.11 without CAP_SYS_RESOURCE: the fix is named (the
	// DaemonSet does not add the capability by default).
	err = memlockError(unix.EPERM, "5.4.0-150-generic")
	assert.ErrorIs(t, err, unix.EPERM)
	assert.ErrorContains(t, err, "kernel 5.4.0-150-generic")
	assert.ErrorContains(t, err, "add the SYS_RESOURCE capability to the agent's container")
	assert.ErrorContains(t, err, `docs/install.md, "Kernels before 5.11"`)
	assert.NotEmpty(t, kernelRelease())
}

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// TestStartTimeNamesTheProcess: every record carries its process's start
// time, the one /proc/<pid>/stat reports (field 22, in USER_HZ ticks), so that
// a pid and a start time name one process across PID reuse.
func TestStartTimeNamesTheProcess(t *testing.T) {
	requireRoot(t)
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1})
	cmd := exec.Command("/bin/sleep", "5")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := uint32(cmd.Process.Pid)
	ex := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == pid })

	stat, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	require.NoError(t, err)
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:])) // past "pid (comm) "
	ticks, err := strconv.ParseUint(fields[19], 10, 64)                       // field 22: starttime
	require.NoError(t, err)
	const userHZ = 100 // USER_HZ, fixed at 100 on Linux whatever CONFIG_HZ is
	assert.Equal(t, ticks, ex.StartTime/(1e9/userHZ), "start_time %d ns", ex.StartTime)
	assert.LessOrEqual(t, ex.StartTime, ex.Ktime, "the process started before it exec'd")
}

// TestExecTerminal: an exec in a session with a controlling terminal (a person
// at a terminal, kubectl exec -t) is flagged; one without (a probe, a script,
// kubectl exec without -t) is not.
func TestExecTerminal(t *testing.T) {
	requireRoot(t)
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1})
	plain := exec.Command("/bin/sleep", "0.01")
	require.NoError(t, plain.Run())
	ex := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == uint32(plain.Process.Pid) })
	assert.Zero(t, ex.Flags&FlagTTY, "no controlling terminal")

	term := testenv.StartTerminal(t, exec.Command("/bin/sleep", "5"))
	ex = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == uint32(term.Pid()) })
	assert.NotZero(t, ex.Flags&FlagTTY, "a session whose controlling terminal is a pty")
}
