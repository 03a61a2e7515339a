package ebpfreceiver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"golang.org/x/sys/unix"
)

func TestNetworkEventsEndToEnd(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(cg.path, &st))
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	cmd := helperCommand(cg, "net")
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	pid := cmd.Process.Pid
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2)

	for i, fam := range []struct{ typ, ip string }{{"ipv4", "127.0.0.1"}, {"ipv6", "::1"}} {
		var srv, cli, lnFd, clFd, acFd int
		_, err := fmt.Sscan(lines[i], &srv, &cli, &lnFd, &clFd, &acFd)
		require.NoError(t, err)
		t.Run(fam.typ, func(t *testing.T) {
			byType := func(event string, n int) []map[string]any {
				var got []map[string]any
				for _, lr := range waitForN(t, sink, event, pid, "", 2*n) {
					if m := attrMap(lr); m["network.type"] == fam.typ {
						got = append(got, m)
					}
				}
				require.Len(t, got, n, event)
				return got
			}
			m := byType("network.bind", 1)[0]
			assert.Equal(t, fam.ip, m["server.address"])
			assert.Equal(t, int64(0), m["server.port"], "bound to port 0")
			assert.Equal(t, "tcp", m["network.transport"])
			assert.Equal(t, int64(0), m["k8ssec.syscall.result"])
			assert.Equal(t, int64(lnFd), m["k8ssec.network.socket.fd"])
			assert.Equal(t, selfExe(t), m["process.executable.path"])

			m = byType("network.listen", 1)[0]
			assert.Equal(t, fam.ip, m["server.address"])
			assert.Equal(t, int64(srv), m["server.port"])
			assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

			m = byType("network.connect", 1)[0]
			assert.Equal(t, fam.ip, m["server.address"])
			assert.Equal(t, int64(srv), m["server.port"])
			assert.Equal(t, fam.ip, m["client.address"])
			assert.Equal(t, int64(cli), m["client.port"])
			assert.Equal(t, "tcp", m["network.transport"])
			assert.Equal(t, int64(0), m["k8ssec.syscall.result"])
			assert.Equal(t, int64(clFd), m["k8ssec.network.socket.fd"])
			assert.Equal(t, int64(pid), m["process.pid"])

			m = byType("network.accept", 1)[0]
			assert.Equal(t, fam.ip, m["server.address"])
			assert.Equal(t, int64(srv), m["server.port"])
			assert.Equal(t, fam.ip, m["client.address"])
			assert.Equal(t, int64(cli), m["client.port"])
			assert.Equal(t, int64(acFd), m["k8ssec.syscall.result"])
			assert.Equal(t, int64(lnFd), m["k8ssec.network.socket.fd"])

			// TCP states, attributed by the socket's cgroup whatever the CPU ran.
			var states []string
			require.Eventually(t, func() bool {
				states = states[:0]
				for _, lr := range find(sink, "network.tcp_state", -1) {
					m := attrMap(lr)
					if m["network.type"] != fam.typ {
						continue
					}
					assert.Equal(t, int64(st.Ino), m["k8ssec.linux.cgroup.id"], "only the test cgroup's sockets")
					states = append(states, fmt.Sprintf("%v:%v>%v:%v %v>%v", m["network.local.address"], m["network.local.port"],
						m["network.peer.address"], m["network.peer.port"], m["k8ssec.network.tcp.old_state"], m["k8ssec.network.tcp.new_state"]))
				}
				return len(states) >= 4
			}, 10*time.Second, 10*time.Millisecond, "four tcp states: %v", states)
			ip := fam.ip
			assert.Contains(t, states, fmt.Sprintf("%s:%d>%s:0 CLOSE>LISTEN", ip, srv, anyAddr(fam.typ)))
			assert.Contains(t, states, fmt.Sprintf("%s:%d>%s:%d SYN_SENT>ESTABLISHED", ip, cli, ip, srv))
			assert.Contains(t, states, fmt.Sprintf("%s:%d>%s:%d SYN_RECV>ESTABLISHED", ip, srv, ip, cli))
		})
	}
	assert.Empty(t, find(sink, "network.connect", os.Getpid()), "the test process is outside the cgroup")
}

func anyAddr(typ string) string {
	if typ == "ipv6" {
		return "::"
	}
	return "0.0.0.0"
}

// TestPortsOfInterest: with a port filter that the helper's ephemeral ports
// miss, no network event of the helper is reported.
func TestPortsOfInterest(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.CgroupPath = cg.path
		c.PortsOfInterest = []uint16{1}
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	cmd := helperCommand(cg, "net")
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	waitFor(t, sink, "process.exit", cmd.Process.Pid)
	for _, e := range []string{"network.bind", "network.listen", "network.connect", "network.accept", "network.tcp_state"} {
		assert.Empty(t, find(sink, e, -1), e)
	}
}
