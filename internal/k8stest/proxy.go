package k8stest

import (
	"io"
	"net"
	"strings"
	"testing"
)

// ReachableAt forwards TCP connections from listen to the apiserver until the
// test ends: an apiserver cannot be started on a port chosen in advance, so a
// client given listen before this call sees it unreachable, then reachable.
func (c *Cluster) ReachableAt(t testing.TB, listen string) {
	t.Helper()
	target := strings.TrimPrefix(c.URL, "https://")
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("k8stest: listening on %s: %v", listen, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}
