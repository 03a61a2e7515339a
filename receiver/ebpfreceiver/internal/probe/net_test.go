package probe

import (
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

func TestNetLayout(t *testing.T) {
	assert.Equal(t, 144, netSize)
	assert.Equal(t, uintptr(96), unsafe.Offsetof(netNetEvent{}.Saddr))
	assert.Equal(t, uintptr(128), unsafe.Offsetof(netNetEvent{}.Fd))
}

func TestCgroupLevel(t *testing.T) {
	root := "/sys/fs/cgroup"
	if _, err := os.Stat(root + "/unified/cgroup.procs"); err == nil {
		root += "/unified"
	}
	_, err := os.Stat(root + "/cgroup.procs")
	testenv.Require(t, err == nil, "no cgroup v2 hierarchy at /sys/fs/cgroup")
	var st unix.Stat_t
	require.NoError(t, unix.Stat(root, &st))
	id, level, err := cgroupLevel(root)
	require.NoError(t, err)
	assert.Equal(t, st.Ino, id)
	assert.Zero(t, level)
	if os.Geteuid() != 0 {
		return
	}
	dir, err := os.MkdirTemp(root, "k8ssec-level-")
	require.NoError(t, err)
	defer os.Remove(dir)
	sub := dir + "/sub"
	require.NoError(t, os.Mkdir(sub, 0o755))
	defer os.Remove(sub)
	_, level, err = cgroupLevel(sub)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), level)
}

// tcpPair listens on addr (port 0), connects to it and accepts, with
// blocking raw syscalls; it returns the listener's and the client's ports
// and the accepted fd.
func tcpPair(t *testing.T, family int, addr unix.Sockaddr) (srvPort, cliPort, acceptFd int) {
	t.Helper()
	ln, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(ln) })
	require.NoError(t, unix.Bind(ln, addr))
	require.NoError(t, unix.Listen(ln, 8))
	sa, err := unix.Getsockname(ln)
	require.NoError(t, err)
	var dst unix.Sockaddr
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		srvPort, dst = a.Port, a
	case *unix.SockaddrInet6:
		srvPort, dst = a.Port, a
	}
	cl, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(cl) })
	require.NoError(t, unix.Connect(cl, dst))
	ca, err := unix.Getsockname(cl)
	require.NoError(t, err)
	switch a := ca.(type) {
	case *unix.SockaddrInet4:
		cliPort = a.Port
	case *unix.SockaddrInet6:
		cliPort = a.Port
	}
	acceptFd, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(acceptFd) })
	return srvPort, cliPort, acceptFd
}

func TestNetEvents(t *testing.T) {
	requireRoot(t)
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true,
		NetKinds: []Kind{KindNetConnect, KindNetAccept, KindNetBind, KindNetListen, KindNetTCPState}})
	self := uint32(os.Getpid())

	for _, tc := range []struct {
		name   string
		family int
		addr   unix.Sockaddr
		ip     []byte
	}{
		{"ipv4", unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, []byte{127, 0, 0, 1}},
		{"ipv6", unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, (&[16]byte{15: 1})[:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli, afd := tcpPair(t, tc.family, tc.addr)
			ip := func(a [16]byte) []byte { return a[:len(tc.ip)] }
			of := func(k Kind) func(*Event) bool {
				return func(e *Event) bool { return e.Kind == k && e.Tgid == self }
			}
			ev := readUntil(t, rd, of(KindNetBind))
			assert.Equal(t, uint16(tc.family), ev.Family)
			assert.Equal(t, uint16(0), ev.LocalPort, "bind asked for port 0")
			assert.Equal(t, tc.ip, ip(ev.LocalAddr))
			assert.Equal(t, uint16(unix.IPPROTO_TCP), ev.Protocol)
			assert.Zero(t, ev.Result)

			ev = readUntil(t, rd, of(KindNetListen))
			assert.Equal(t, uint16(srv), ev.LocalPort)
			assert.Equal(t, tc.ip, ip(ev.LocalAddr))
			assert.Zero(t, ev.Result)

			// The client's SYN_SENT comes before its port is chosen (sport 0);
			// then the client's ESTABLISHED, then the server side's.
			st := readUntil(t, rd, func(e *Event) bool {
				return e.Kind == KindNetTCPState && e.RemotePort == uint16(srv) && e.NewState == unix.BPF_TCP_SYN_SENT
			})
			assert.Equal(t, int32(unix.BPF_TCP_CLOSE), st.OldState)
			assert.Equal(t, tc.ip, ip(st.RemoteAddr))
			st = readUntil(t, rd, func(e *Event) bool {
				return e.Kind == KindNetTCPState && e.LocalPort == uint16(cli) && e.NewState == unix.BPF_TCP_ESTABLISHED
			})
			assert.Equal(t, int32(unix.BPF_TCP_SYN_SENT), st.OldState)
			assert.Equal(t, uint16(srv), st.RemotePort)
			assert.Equal(t, uint16(tc.family), st.Family)
			st = readUntil(t, rd, func(e *Event) bool {
				return e.Kind == KindNetTCPState && e.LocalPort == uint16(srv) && e.RemotePort == uint16(cli) && e.NewState == unix.BPF_TCP_ESTABLISHED
			})
			assert.Equal(t, int32(unix.BPF_TCP_SYN_RECV), st.OldState)
			assert.Equal(t, tc.ip, ip(st.RemoteAddr))
			assert.Equal(t, tc.ip, ip(st.LocalAddr))

			ev = readUntil(t, rd, of(KindNetConnect))
			assert.Equal(t, uint16(srv), ev.RemotePort)
			assert.Equal(t, tc.ip, ip(ev.RemoteAddr))
			assert.Equal(t, uint16(cli), ev.LocalPort)
			assert.Equal(t, tc.ip, ip(ev.LocalAddr))
			assert.Zero(t, ev.Result)
			assert.Equal(t, uint16(unix.IPPROTO_TCP), ev.Protocol)

			ev = readUntil(t, rd, of(KindNetAccept))
			assert.Equal(t, int64(afd), ev.Result)
			assert.Equal(t, uint16(srv), ev.LocalPort)
			assert.Equal(t, uint16(cli), ev.RemotePort)
			assert.Equal(t, tc.ip, ip(ev.RemoteAddr))
			assert.Equal(t, uint16(tc.family), ev.Family)
		})
	}
	lost, err := p.LostCounts()
	require.NoError(t, err)
	assert.Zero(t, lost[KindNetTCPState])
}
