package ebpfreceiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// helperSockets connects to the unix socket at unixPath; creates a packet
// socket, a raw IPv4 socket and a TCP one; then, after putting a regular
// file on fd 1, connects the TCP socket to 127.0.0.1:port and dup2s it onto
// 0, 1 and 2: a reverse shell's plumbing. It prints the unix and TCP client
// fds first, while stdout is still the test's.
func helperSockets(unixPath, port string) error {
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	u, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(u, &unix.SockaddrUnix{Name: unixPath}); err != nil {
		return fmt.Errorf("unix connect: %w", err)
	}
	if _, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */); err != nil {
		return err
	}
	if _, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP); err != nil {
		return err
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	fmt.Println(u, s)
	f, err := os.CreateTemp("", "k8ssec-dup-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := unix.Dup2(int(f.Fd()), 1); err != nil {
		return err
	}
	for fd := range 3 {
		if err := unix.Dup2(s, fd); err != nil {
			return err
		}
	}
	return nil
}

// TestSocketEventsEndToEnd: the helper, in a container's cgroup: its unix
// connect names the socket the test listens on; its packet and raw sockets
// are network.socket records (its TCP socket is not); its TCP connection
// wired onto 0-2 gives three process.fd_dup records with the peer, and the
// regular file on 1 none. The runtime rules alert on the sockets and dups.
func TestSocketEventsEndToEnd(t *testing.T) {
	requireRoot(t)
	// A container's cgroup, as containerd names it: the records carry
	// container.id, so that the container rules apply to them.
	containerID := strings.Repeat("5c", 32)
	cg := makeContainerCgroup(t, "5c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f", containerID)
	sockPath := filepath.Join(t.TempDir(), "containerd.sock")
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ln)
	require.NoError(t, unix.Bind(ln, &unix.SockaddrUnix{Name: sockPath}))
	require.NoError(t, unix.Listen(ln, 8))
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(tcp)
	require.NoError(t, unix.Bind(tcp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(tcp, 8))
	sa, err := unix.Getsockname(tcp)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port

	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	cmd := helperCommand(cg, "sockets", sockPath, strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	var unixFd, tcpFd int
	_, err = fmt.Sscan(strings.TrimSpace(string(out)), &unixFd, &tcpFd)
	require.NoError(t, err, "helper printed %q", out)
	pid := cmd.Process.Pid

	var conn map[string]any
	for _, e := range waitForN(t, sink, "network.connect", pid, "", 2) {
		if m := attrMap(e); m["network.transport"] == "unix" {
			conn = m
		}
	}
	require.NotNil(t, conn, "a unix connect record")
	assert.Equal(t, sockPath, conn["server.address"])
	assert.Equal(t, true, conn["k8ssec.network.unix.path_resolved"])
	assert.Equal(t, "stream", conn["k8ssec.network.socket.type"])
	assert.Equal(t, int64(unixFd), conn["k8ssec.network.socket.fd"])
	assert.Equal(t, int64(0), conn["k8ssec.syscall.result"])
	assert.NotContains(t, conn, "network.type")
	assert.Equal(t, containerID, conn["container.id"])

	socks := waitForN(t, sink, "network.socket", pid, "", 2)
	require.Len(t, socks, 2, "the TCP socket is not reported")
	pkt, raw := attrMap(socks[0]), attrMap(socks[1])
	assert.Equal(t, "packet", pkt["k8ssec.network.socket.family"])
	assert.Equal(t, "raw", pkt["k8ssec.network.socket.type"])
	assert.Equal(t, int64(0x0300), pkt["k8ssec.network.socket.protocol"])
	assert.Equal(t, "inet", raw["k8ssec.network.socket.family"])
	assert.Equal(t, "raw", raw["k8ssec.network.socket.type"])
	assert.Equal(t, "icmp", raw["network.transport"])
	assert.Equal(t, "ipv4", raw["network.type"])
	for _, e := range socks {
		assert.Equal(t, []string{"Raw or packet socket opened in a container"}, runtimeRulesMatching(t, e))
	}

	dups := waitForN(t, sink, "process.fd_dup", pid, "", 3)
	require.Len(t, dups, 3, "the file's dup2 onto 1 is not reported")
	for i, e := range dups {
		m := attrMap(e)
		assert.Equal(t, int64(i), m["k8ssec.process.fd_dup.new_fd"])
		assert.Equal(t, int64(tcpFd), m["k8ssec.process.fd_dup.old_fd"])
		assert.Contains(t, []any{"dup2", "dup3"}, m["k8ssec.syscall.name"]) // x/sys's Dup2 is dup3 on Linux
		assert.Equal(t, "inet", m["k8ssec.network.socket.family"])
		assert.Equal(t, "tcp", m["network.transport"])
		assert.Equal(t, "127.0.0.1", m["network.peer.address"])
		assert.Equal(t, int64(port), m["network.peer.port"])
		assert.Equal(t, selfExe(t), m["process.executable.path"])
		assert.Equal(t, []string{"Network connection on standard input or output"}, runtimeRulesMatching(t, e))
	}
}

// recordHeader is sizeof(struct event_header) (probe.TestLayout holds it):
// the synthetic records below place their fields after it.
const recordHeader = 80

// syntheticUnixConnect is a network.connect record to the abstract socket
// "@a\x00b" (NULs are part of abstract names).
func syntheticUnixConnect() []byte {
	const netSize = recordHeader + 64 // sizeof(struct net_event)
	const pathOff = netSize + 16
	raw := syntheticRecord(probe.KindNetConnect, pathOff+3)
	le := binary.LittleEndian
	le.PutUint16(raw[recordHeader+8:], unix.AF_UNIX) // net_event.family
	le.PutUint32(raw[netSize:], 3)
	le.PutUint32(raw[netSize+4:], 1|2) // resolved, abstract
	le.PutUint32(raw[netSize+8:], unix.SOCK_STREAM)
	copy(raw[pathOff:], "a\x00b")
	return raw
}

// syntheticFdDup is a process.fd_dup of an IPv4 TCP socket onto fd 2.
func syntheticFdDup() []byte {
	const h = recordHeader
	raw := syntheticRecord(probe.KindFdDup, h+64)
	le := binary.LittleEndian
	le.PutUint32(raw[h+8:], 3)  // oldfd
	le.PutUint32(raw[h+12:], 2) // newfd
	le.PutUint32(raw[h+16:], 2) // dup2
	le.PutUint16(raw[h+20:], unix.AF_INET)
	le.PutUint16(raw[h+22:], unix.IPPROTO_TCP)
	le.PutUint32(raw[h+24:], unix.SOCK_STREAM)
	le.PutUint16(raw[h+30:], 4444) // dport
	copy(raw[h+48:], []byte{203, 0, 113, 7})
	return raw
}

// syntheticRawSocket is a network.socket record of a raw ICMPv6 socket.
func syntheticRawSocket() []byte {
	const h = recordHeader
	raw := syntheticRecord(probe.KindNetSocket, h+24)
	le := binary.LittleEndian
	le.PutUint64(raw[h:], 5) // the fd
	le.PutUint32(raw[h+8:], unix.AF_INET6)
	le.PutUint32(raw[h+12:], unix.SOCK_RAW)
	le.PutUint32(raw[h+16:], unix.IPPROTO_ICMPV6)
	return raw
}

// TestSocketRecordAttributes: each of the new socket records maps to its
// attributes, with room made for exactly as many.
func TestSocketRecordAttributes(t *testing.T) {
	for _, tc := range []struct {
		raw  []byte
		want map[string]any
	}{
		{syntheticUnixConnect(), map[string]any{"network.transport": "unix", "server.address": "@a@b",
			"k8ssec.network.unix.abstract": true, "k8ssec.network.unix.path_resolved": true,
			"k8ssec.network.socket.type": "stream", "k8ssec.network.socket.fd": int64(0), "k8ssec.syscall.result": int64(0)}},
		{syntheticFdDup(), map[string]any{"k8ssec.process.fd_dup.old_fd": int64(3), "k8ssec.process.fd_dup.new_fd": int64(2),
			"k8ssec.syscall.name": "dup2", "k8ssec.network.socket.family": "inet", "k8ssec.network.socket.type": "stream",
			"k8ssec.syscall.result": int64(0), "network.type": "ipv4", "network.transport": "tcp",
			"network.peer.address": "203.0.113.7", "network.peer.port": int64(4444),
			"network.local.address": "0.0.0.0", "network.local.port": int64(0)}},
		{syntheticRawSocket(), map[string]any{"k8ssec.network.socket.family": "inet6", "k8ssec.network.socket.type": "raw",
			"k8ssec.network.socket.protocol": int64(unix.IPPROTO_ICMPV6), "network.type": "ipv6", "network.transport": "icmp",
			"k8ssec.syscall.result": int64(5)}},
	} {
		var ev probe.Event
		require.NoError(t, probe.Decode(tc.raw, &ev))
		r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
		b := newEventBatch()
		r.appendEvent(b, &ev)
		attrs := events(b.logs)[0].Attributes().AsRaw()
		assert.Equal(t, tc.want, attrs, "%v", ev.Kind)
		assert.Len(t, attrs, ownAttributes(&ev), "%v: room for exactly the attributes it has", ev.Kind)
	}
}
