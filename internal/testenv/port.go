package testenv

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// The ports FreePort hands out come from below the kernel's ephemeral range
// (32768-60999 by default), so a client socket's source port never takes one
// between FreePort and the child process binding it; and a port is handed out
// once per test binary, so two freshly closed listeners cannot come back as the
// same number (the collision that once failed CI: health_check and the audit
// webhook both got 38749).
const portLow, portHigh = 20000, 32000

var (
	portsMu     sync.Mutex
	portsIssued = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago and that no
// other FreePort call in this process has returned, for a server the test
// starts in another process or configures by number.
func FreePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow)
		if portsIssued[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken by another process: try another
		}
		_ = l.Close()
		portsIssued[port] = true
		return port
	}
	tb.Fatalf("no free loopback port found in %d-%d", portLow, portHigh)
	return 0
}
