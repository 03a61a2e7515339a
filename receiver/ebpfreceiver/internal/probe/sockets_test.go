package probe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The dup test re-executes this test binary as a helper that wires a TCP
// connection onto its fds 0-2: a reverse shell's shape, which the test
// process cannot take on itself without losing its own stdio.
const dupHelperEnv = "K8SSEC_PROBE_DUP_HELPER"

func init() {
	if addr := os.Getenv(dupHelperEnv); addr != "" {
		if err := dupHelper(addr); err != nil {
			fmt.Fprintln(os.Stderr, "dup helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// dupHelper dup2s a regular file onto fd 1 (not a socket: not reported),
// then connects to 127.0.0.1:port and puts the socket on fd 0 (dup2), 1
// (dup3) and 2 (fcntl F_DUPFD after closing 2; then dup after closing it
// again). It prints the socket's fd
// first, while its stdout is still the test's pipe.
func dupHelper(port string) error {
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "k8ssec-dup-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	fmt.Println(s)
	if err := dup2(int(f.Fd()), 1); err != nil {
		return err
	}
	if err := dup2(s, 0); err != nil {
		return err
	}
	if err := unix.Dup3(s, 1, unix.O_CLOEXEC); err != nil {
		return err
	}
	unix.Close(2)
	if fd, err := unix.FcntlInt(uintptr(s), unix.F_DUPFD, 0); err != nil || fd != 2 {
		return fmt.Errorf("F_DUPFD: %d, %v", fd, err)
	}
	unix.Close(2)
	if fd, err := unix.Dup(s); err != nil || fd != 2 {
		return fmt.Errorf("dup: %d, %v", fd, err)
	}
	return nil
}

func TestSocketLayouts(t *testing.T) {
	assert.Equal(t, headerSize+24, socketSize)
	assert.Equal(t, headerSize+64, fdDupSize)
	assert.Equal(t, headerSize+32, fdDupSaddrOff)
	assert.Equal(t, netSize+16, unixPathOff)
	assert.Equal(t, uintptr(netSize), unsafe.Offsetof(netNetUnixEvent{}.PathLen))
}

func TestDecodeUnixRejectsBadLengths(t *testing.T) {
	raw := make([]byte, unixPathOff+4)
	le.PutUint32(raw, uint32(KindNetConnect))
	le.PutUint16(raw[headerSize+8:], unix.AF_UNIX)
	le.PutUint32(raw[netSize:], 5) // 5 bytes of path, 4 sent
	var ev Event
	assert.ErrorIs(t, Decode(raw, &ev), errBadLength)
	le.PutUint32(raw[netSize:], 4)
	require.NoError(t, Decode(raw, &ev))
	assert.Len(t, ev.Socket.Path, 4)
	assert.ErrorIs(t, Decode(raw[:unixPathOff-1], &ev), errShort)
}

// TestUnixConnect connects to a unix socket the test listens on, by its path
// and through a symlink (both name the socket itself), to an abstract name,
// and to a path where nothing listens (the caller's string, unresolved).
func TestUnixConnect(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "k8ssec.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ln)
	require.NoError(t, unix.Bind(ln, &unix.SockaddrUnix{Name: sockPath}))
	require.NoError(t, unix.Listen(ln, 8))
	abstract := fmt.Sprintf("k8ssec-test-%d", os.Getpid())
	aln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(aln)
	require.NoError(t, unix.Bind(aln, &unix.SockaddrUnix{Name: "@" + abstract}))
	require.NoError(t, unix.Listen(aln, 8))
	link := filepath.Join(dir, "link.sock")
	require.NoError(t, os.Symlink(sockPath, link))

	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		NetKinds: []Kind{KindNetConnect}, Ports: []uint16{1}}) // the port filter leaves unix sockets alone
	self := uint32(os.Getpid())

	for _, tc := range []struct {
		name, dial, want   string
		abstract, resolved bool
		result             int64
	}{
		{"path", sockPath, sockPath, false, true, 0},
		{"symlink", link, sockPath, false, true, 0},
		{"abstract", "@" + abstract, abstract, true, true, 0},
		{"nothing there", filepath.Join(dir, "missing.sock"), filepath.Join(dir, "missing.sock"), false, false, -int64(unix.ENOENT)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			defer unix.Close(c)
			_ = unix.Connect(c, &unix.SockaddrUnix{Name: tc.dial})
			ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindNetConnect && e.Tgid == self })
			assert.Equal(t, uint16(unix.AF_UNIX), ev.Family)
			assert.Equal(t, tc.want, string(ev.Socket.Path))
			assert.Equal(t, tc.abstract, ev.Socket.Abstract)
			assert.Equal(t, tc.resolved, ev.Socket.Resolved)
			assert.Equal(t, tc.result, ev.Result)
			assert.Equal(t, int32(c), ev.Fd)
			assert.Equal(t, uint32(unix.SOCK_STREAM), ev.Socket.Type)
		})
	}
}

// TestPacketAndRawSockets creates a packet socket, a raw IPv4 socket and a
// plain TCP one: the first two are reported with what the kernel made of
// them, the TCP socket is not.
func TestPacketAndRawSockets(t *testing.T) {
	requireRoot(t)
	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		NetKinds: []Kind{KindNetSocket}})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := uint32(unix.Gettid())

	ethPAll := int(htons(unix.ETH_P_ALL))
	pkt, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, ethPAll)
	require.NoError(t, err)
	defer unix.Close(pkt)
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(tcp)
	raw, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	require.NoError(t, err)
	defer unix.Close(raw)

	mine := func(e *Event) bool { return e.Kind == KindNetSocket && e.Pid == tid }
	ev := readUntil(t, rd, mine)
	assert.Equal(t, int64(pkt), ev.Result)
	assert.Equal(t, uint16(unix.AF_PACKET), ev.Family)
	assert.Equal(t, uint32(unix.SOCK_RAW), ev.Socket.Type)
	assert.Equal(t, uint16(ethPAll), ev.Protocol)
	ev = readUntil(t, rd, mine)
	assert.Equal(t, int64(raw), ev.Result, "the next is the raw socket: the TCP one in between is not reported")
	assert.Equal(t, uint16(unix.AF_INET), ev.Family)
	assert.Equal(t, uint32(unix.SOCK_RAW), ev.Socket.Type)
	assert.Equal(t, uint16(unix.IPPROTO_ICMP), ev.Protocol)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestFdDupOfSocket: a helper wires a TCP connection onto 0, 1 and 2 (dup2,
// dup3, fcntl F_DUPFD, dup): four records with the socket's peer; its dup2
// of a regular file onto 1 before them is not reported.
func TestFdDupOfSocket(t *testing.T) {
	requireRoot(t)
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ln)
	require.NoError(t, unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(ln, 8))
	sa, err := unix.Getsockname(ln)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port

	_, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		NetKinds: []Kind{KindFdDup}})
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), dupHelperEnv+"="+strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	sock, err := strconv.Atoi(string(out[:len(out)-1]))
	require.NoError(t, err, "helper printed %q", out)
	pid := uint32(cmd.Process.Pid)

	for _, want := range []struct {
		newFd int32
		op    DupOp
	}{{0, dup2Op}, {1, DupOpDup3}, {2, DupOpFcntl}, {2, DupOpDup}} {
		ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFdDup && e.Tgid == pid })
		assert.Equal(t, want.newFd, ev.Socket.NewFd, "the file's dup2 onto 1 came first and is not reported")
		assert.Equal(t, int64(want.newFd), ev.Result)
		assert.Equal(t, int32(sock), ev.Socket.OldFd)
		assert.Equal(t, want.op, ev.Socket.DupOp)
		assert.Equal(t, uint16(unix.AF_INET), ev.Family)
		assert.Equal(t, uint16(unix.IPPROTO_TCP), ev.Protocol)
		assert.Equal(t, uint32(unix.SOCK_STREAM), ev.Socket.Type)
		assert.Equal(t, uint16(port), ev.RemotePort)
		assert.Equal(t, []byte{127, 0, 0, 1}, ev.RemoteAddr[:4])
		assert.NotZero(t, ev.LocalPort)
	}
}
