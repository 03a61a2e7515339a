package probe

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// suidHelper is this test binary, set-uid root, in the VM's initramfs.
const suidHelper = "/suid-helper"

// TestHooksUnderQemu boots Debian's 6.1 and 6.12 under qemu and runs
// TestHooksInVM in each: this machine's kernel runs neither fentry nor
// kprobe programs.
func TestHooksUnderQemu(t *testing.T) {
	vm := newQemuVM(t)
	vm.add(t, filepath.Join(vm.root, "probe.test"), suidHelper, os.ModeSetuid|0o755)
	vm.addProgram(t, compatHelperSource, compatHelper, "386")
	for _, series := range []string{"6.1", "6.12"} {
		t.Run(series, func(t *testing.T) { vm.run(t, testKernel(t, series), "TestHooksInVM") })
	}
}

// TestHooksInVM runs every hook in each mode, fentry then kprobe, in the VM
// that TestHooksUnderQemu boots.
func TestHooksInVM(t *testing.T) {
	requireVM(t, "TestHooksUnderQemu")
	for _, mode := range []HookMode{HookFentry, HookKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			t.Run("escalation", func(t *testing.T) { testEscalation(t, mode) })
			t.Run("escalation kill", func(t *testing.T) { testEscalationKill(t, mode) })
			t.Run("file open", func(t *testing.T) { testHookFileOpen(t, mode) })
			t.Run("connect accept", func(t *testing.T) { testHookConnectAccept(t, mode) })
			t.Run("32-bit syscalls", func(t *testing.T) { testCompatSyscalls(t, mode) })
		})
	}
}

// loadHooksIn loads cfg with only mode for the hooks, and checks that every
// hook it wants runs in that mode.
func loadHooksIn(t *testing.T, mode HookMode, cfg Config) (*Probe, *Reader) {
	t.Helper()
	cfg.RingBufferSize, cfg.MaxArgs, cfg.SkipFork, cfg.hookModes = 1<<22, 2, true, []HookMode{mode}
	p, rd := loadReading(t, cfg)
	for _, h := range cfg.wantedHooks() {
		st := p.Hooks[h]
		require.Equal(t, mode, st.Mode, "%s: %v", h, st.Err)
	}
	return p, rd
}

// untilExit reads events until pid's exit and returns those of keep.
func untilExit(t *testing.T, rd *Reader, pid int, keep func(*Event) bool) (kept []Event, exit Event) {
	t.Helper()
	exit = readUntil(t, rd, func(e *Event) bool {
		if keep(e) {
			c := *e
			c.Path = append([]byte(nil), e.Path...) // e's slices are the reader's until the next read
			kept = append(kept, c)
		}
		return e.Kind == KindExit && e.Tgid == uint32(pid)
	})
	return kept, exit
}

func escalationOf(pid int) func(*Event) bool {
	return func(e *Event) bool { return e.Kind == KindPrivEscalation && e.Tgid == uint32(pid) }
}

// testEscalation: what grants uid 0 legitimately does not alert, though
// commit_creds runs: a set-uid root executable run by uid 1000 (the exec's
// credentials), then its setresuid(0, 0, 0); and a uid-1000 process with
// saved uid 0 that sets PR_SET_KEEPCAPS (commit_creds, ids unchanged) and
// takes euid 0 back with setresuid.
func testEscalation(t *testing.T, mode HookMode) {
	p, rd := loadHooksIn(t, mode, Config{Escalation: true})
	before, err := p.HookCalls(HookCommitCreds)
	require.NoError(t, err)

	suid := helperCommand(suidHelper, "suid")
	suid.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	out, err := suid.Output()
	require.NoError(t, err)
	assert.Equal(t, "1000 0 0\n0 0 0\n", string(out), "set-uid root, then root")
	esc, _ := untilExit(t, rd, suid.Process.Pid, escalationOf(suid.Process.Pid))
	assert.Empty(t, esc, "a set-uid executable and its setresuid grant uid 0")

	self, err := os.Executable()
	require.NoError(t, err)
	regain := helperCommand(self, "regain")
	out, err = regain.Output()
	require.NoError(t, err)
	assert.Equal(t, "1000 0 0\n", string(out))
	esc, _ = untilExit(t, rd, regain.Process.Pid, escalationOf(regain.Process.Pid))
	assert.Empty(t, esc, "setresuid grants the saved uid back")

	after, err := p.HookCalls(HookCommitCreds)
	require.NoError(t, err)
	// The child's setgid/setuid before its exec, the exec, setresuid; then
	// setresuid, prctl, setresuid: all went through the hook.
	assert.GreaterOrEqual(t, after-before, uint64(6), "commit_creds calls the hook saw")
}

// testEscalationKill: the closest honest trigger of an escalation without a
// kernel module. Legitimate kernel paths to uid 0 all go through a granting
// syscall; here setresuid is taken out of the granting set, so that the
// helper's return to euid 0 (through commit_creds, from a uid-1000 process)
// is an escalation from a syscall the detector does not know to grant, as an
// exploit's would be. kill_on_escalation kills it on its way back.
func testEscalationKill(t *testing.T, mode HookMode) {
	p, rd := loadHooksIn(t, mode, Config{Escalation: true, KillOnEscalation: true, ungranted: []uint32{unix.SYS_SETRESUID}})
	self, err := os.Executable()
	require.NoError(t, err)
	regain := helperCommand(self, "regain")
	out, err := regain.Output()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	ws := ee.Sys().(syscall.WaitStatus)
	assert.Equal(t, syscall.SIGKILL, ws.Signal())
	assert.Empty(t, string(out), "killed before it printed")

	esc, exit := untilExit(t, rd, regain.Process.Pid, escalationOf(regain.Process.Pid))
	require.Len(t, esc, 1)
	e := esc[0]
	assert.Equal(t, HookCommitCreds, e.Hook)
	assert.Equal(t, [4]uint32{1000, 1000, 0, 0}, [4]uint32{e.Uid, e.Euid, e.Gid, e.Egid}, "the old ids")
	assert.Equal(t, [4]uint32{1000, 0, 0, 0}, [4]uint32{e.NewUid, e.NewEuid, e.NewGid, e.NewEgid}, "the new ids")
	assert.Equal(t, uint32(unix.SYS_SETRESUID), e.Syscall)
	assert.NotZero(t, e.Flags&EscalationKilled)
	assert.Zero(t, e.Flags&(EscalationExec|EscalationCompat))
	assert.Equal(t, uint32(9), exit.Signal)
	n, err := p.EscalationKillCount()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), n)
}

// testHookFileOpen: an io_uring open and an open_by_handle_at, which no
// syscall tracepoint sees, are reported by security_file_open, and so are
// sensitive files opened through io_uring (core_pattern, another process's
// environ), outside the prefixes; an open(2) is reported once, by its
// tracepoint.
func testHookFileOpen(t *testing.T, mode HookMode) {
	dir := "/tmp/watched-" + string(mode)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	uringPath, byHandle := filepath.Join(dir, "uring"), filepath.Join(dir, "handle")
	for _, f := range []string{uringPath, byHandle} { // before the probe: their creation is not what is tested
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	}
	_, rd := loadHooksIn(t, mode, Config{SkipExec: true, SkipExit: true, FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{dir}})

	plain := filepath.Join(dir, "plain")
	fd, err := unix.Open(plain, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	require.NoError(t, err)
	unix.Close(fd)
	var dup int
	ev := readUntil(t, rd, func(e *Event) bool {
		if e.Kind == KindFileOpen && string(e.Path) == plain && e.Hook != HookNone {
			dup++ // the hook's record would come first: it runs inside the syscall
		}
		return e.Kind == KindFileOpen && string(e.Path) == plain && e.Hook == HookNone
	})
	assert.Zero(t, dup, "an open(2) is reported once")
	assert.Equal(t, int64(fd), ev.Result)

	r, err := newUring()
	require.NoError(t, err)
	defer r.Close()
	fd, err = r.openat(uringPath, unix.O_RDONLY|unix.O_CLOEXEC)
	require.NoError(t, err)
	unix.Close(fd)
	ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFileOpen && string(e.Path) == uringPath })
	assert.Equal(t, HookSecurityFileOpen, ev.Hook)
	assert.Equal(t, uint32(os.Getpid()), ev.Tgid)
	assert.True(t, ev.PathResolved)
	assert.NotZero(t, ev.Inode)
	assert.Zero(t, ev.Result)

	// Sensitive files, through io_uring: reported outside the prefixes, and
	// recognised as the tracepoints' opens are.
	for _, c := range []struct {
		path      string
		flags     uint32
		kind      Sensitive
		targetPid uint32
	}{
		{"/proc/sys/kernel/core_pattern", unix.O_WRONLY, SensitiveCorePattern, 0},
		{"/proc/1/environ", unix.O_RDONLY, SensitiveProcEnviron, 1},
	} {
		fd, err = r.openat(c.path, c.flags|unix.O_CLOEXEC)
		require.NoError(t, err, c.path)
		unix.Close(fd)
		ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFileOpen && string(e.Path) == c.path })
		assert.Equal(t, HookSecurityFileOpen, ev.Hook, c.path)
		assert.Equal(t, c.kind, ev.Sensitive, c.path)
		assert.Equal(t, c.targetPid, ev.TargetPid, c.path)
	}

	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, byHandle, 0)
	require.NoError(t, err)
	mountFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(mountFd)
	fd, err = unix.OpenByHandleAt(mountFd, h, unix.O_RDONLY|unix.O_CLOEXEC)
	require.NoError(t, err)
	unix.Close(fd)
	ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFileOpen && string(e.Path) == byHandle })
	assert.Equal(t, HookSecurityFileOpen, ev.Hook, "open_by_handle_at has no tracepoint here")
}

// testHookConnectAccept: a loopback connect and accept through io_uring are
// reported by tcp_connect and inet_csk_accept; through connect(2) and
// accept4(2), once each, by their tracepoints; a TCP Fast Open connect
// (sendto), by tcp_connect.
func testHookConnectAccept(t *testing.T, mode HookMode) {
	_, rd := loadHooksIn(t, mode, Config{SkipExec: true, SkipExit: true, NetKinds: []Kind{KindNetConnect, KindNetAccept}})
	listen := func() (int, int) {
		ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		require.NoError(t, unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		require.NoError(t, unix.Listen(ln, 8))
		sa, err := unix.Getsockname(ln)
		require.NoError(t, err)
		return ln, sa.(*unix.SockaddrInet4).Port
	}
	client := func() int {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		return c
	}
	localPort := func(fd int) int {
		sa, err := unix.Getsockname(fd)
		require.NoError(t, err)
		return sa.(*unix.SockaddrInet4).Port
	}

	// Through io_uring: the hooks.
	ln, port := listen()
	defer unix.Close(ln)
	cl := client()
	defer unix.Close(cl)
	r, err := newUring()
	require.NoError(t, err)
	defer r.Close()
	afd, err := r.connectAccept(ln, cl, port)
	require.NoError(t, err)
	unix.Close(afd)
	clPort := localPort(cl)
	var connect, accept *Event
	readUntil(t, rd, func(e *Event) bool {
		switch {
		case e.Kind == KindNetConnect && e.RemotePort == uint16(port):
			connect = copyEvent(e)
		case e.Kind == KindNetAccept && e.LocalPort == uint16(port):
			accept = copyEvent(e)
		}
		return connect != nil && accept != nil
	})
	loopback := [16]byte{127, 0, 0, 1}
	assert.Equal(t, HookTCPConnect, connect.Hook)
	assert.Equal(t, uint32(os.Getpid()), connect.Tgid)
	assert.Equal(t, uint16(clPort), connect.LocalPort)
	assert.Equal(t, loopback, connect.RemoteAddr)
	assert.Equal(t, uint16(unix.IPPROTO_TCP), connect.Protocol)
	assert.Equal(t, int32(-1), connect.Fd)
	assert.Equal(t, HookInetCskAccept, accept.Hook)
	assert.Equal(t, uint16(clPort), accept.RemotePort)
	assert.Equal(t, loopback, accept.LocalAddr)
	assert.Equal(t, uint16(unix.AF_INET), accept.Family)

	// Through the syscalls: their tracepoints, once.
	ln2, port2 := listen()
	defer unix.Close(ln2)
	cl2 := client()
	defer unix.Close(cl2)
	require.NoError(t, unix.Connect(cl2, &unix.SockaddrInet4{Port: port2, Addr: loopback4}))
	afd2, _, err := unix.Accept4(ln2, unix.SOCK_CLOEXEC)
	require.NoError(t, err)
	unix.Close(afd2)
	var fromHooks, fromSyscalls int
	readUntil(t, rd, func(e *Event) bool {
		mine := e.Kind == KindNetConnect && e.RemotePort == uint16(port2) || e.Kind == KindNetAccept && e.LocalPort == uint16(port2)
		if mine && e.Hook != HookNone {
			fromHooks++
		} else if mine {
			fromSyscalls++
		}
		return e.Kind == KindNetAccept && e.LocalPort == uint16(port2) && e.Hook == HookNone
	})
	assert.Zero(t, fromHooks, "connect(2) and accept4(2) are reported once, by their tracepoints")
	assert.Equal(t, 2, fromSyscalls)

	// sendto(MSG_FASTOPEN) connects without connect(2): tcp_connect sees it.
	ln3, port3 := listen()
	defer unix.Close(ln3)
	cl3 := client()
	defer unix.Close(cl3)
	require.NoError(t, unix.Sendto(cl3, []byte("x"), unix.MSG_FASTOPEN, &unix.SockaddrInet4{Port: port3, Addr: loopback4}))
	fastOpen := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindNetConnect && e.RemotePort == uint16(port3) })
	assert.Equal(t, HookTCPConnect, fastOpen.Hook, "a TCP Fast Open connect")
	assert.Equal(t, uint16(localPort(cl3)), fastOpen.LocalPort)
}

var loopback4 = [4]byte{127, 0, 0, 1}

// compatHelper is compatHelperSource built for 386, in the VM's initramfs:
// its syscalls are the 32-bit (ia32) ones, which no syscall tracepoint sees.
const compatHelper = "/compat-helper"

// compatHelperSource, run as root with a path: opens the path (creating it),
// becomes uid 1000 keeping 0 as its saved uid and takes euid 0 back, with
// setresuid32; prints its uid and euid.
const compatHelperSource = `package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

func main() {
	runtime.LockOSThread()
	fd, err := syscall.Open(os.Args[1], syscall.O_CREAT|syscall.O_RDONLY, 0o644)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	syscall.Close(fd)
	for _, ids := range [][3]int{{1000, 1000, 0}, {-1, 0, -1}} {
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID32, uintptr(ids[0]), uintptr(ids[1]), uintptr(ids[2])); e != 0 {
			fmt.Println("setresuid32:", e)
			os.Exit(1)
		}
	}
	fmt.Println(syscall.Getuid(), syscall.Geteuid())
}
`

// testCompatSyscalls: a 32-bit process's open, which no tracepoint sees, is
// reported by security_file_open; its setresuid32 calls are granting ones
// (the 32-bit table's numbers), so taking euid 0 back does not alert.
func testCompatSyscalls(t *testing.T, mode HookMode) {
	dir := "/tmp/compat-" + string(mode)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, rd := loadHooksIn(t, mode, Config{FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{dir}, Escalation: true})
	path := filepath.Join(dir, "opened")
	cmd := exec.Command(compatHelper, path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "1000 0\n", string(out))
	pid := cmd.Process.Pid
	kept, _ := untilExit(t, rd, pid, func(e *Event) bool {
		return e.Tgid == uint32(pid) && (e.Kind == KindPrivEscalation || e.Kind == KindFileOpen)
	})
	var opens []string
	for _, e := range kept {
		assert.NotEqual(t, KindPrivEscalation, e.Kind, "setresuid32 grants the saved uid back")
		if e.Kind == KindFileOpen {
			assert.Equal(t, HookSecurityFileOpen, e.Hook)
			opens = append(opens, string(e.Path))
		}
	}
	assert.Equal(t, []string{path}, opens, "the 32-bit open, once, from the hook")
}

func copyEvent(e *Event) *Event {
	c := *e
	return &c
}

// TestUringOpenUnseenByTracepoints: what the security_file_open hook is for.
// An open through io_uring makes no open syscall: the tracepoints report the
// open(2) after it, never it.
func TestUringOpenUnseenByTracepoints(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	uringPath, marker := filepath.Join(dir, "uring"), filepath.Join(dir, "marker")
	require.NoError(t, os.WriteFile(uringPath, nil, 0o644)) // before the probe
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{dir}})
	r, err := newUring()
	// io_uring switched off (kernel.io_uring_disabled, a seccomp profile): skipped on a
	// developer's machine, a failure under CI, where it must run.
	testenv.Require(t, !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM),
		fmt.Sprintf("io_uring is off here (%v): sysctl kernel.io_uring_disabled=0", err))
	require.NoError(t, err)
	defer r.Close()
	fd, err := r.openat(uringPath, unix.O_RDONLY|unix.O_CLOEXEC)
	require.NoError(t, err)
	unix.Close(fd) // its completion came after its open, wherever it ran
	fd, err = unix.Open(marker, unix.O_CREAT|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	require.NoError(t, err)
	unix.Close(fd)
	var seen bool
	readUntil(t, rd, func(e *Event) bool {
		seen = seen || string(e.Path) == uringPath
		return string(e.Path) == marker
	})
	assert.False(t, seen, "the io_uring open")
}
