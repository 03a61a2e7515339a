package ingresslogreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitUpstream(t *testing.T) {
	nss := [][]byte{[]byte("team-a"), []byte("team-a-prod")}
	for _, c := range []struct{ in, ns, svc, port string }{
		{"shop-web-8080", "shop", "web", "8080"},
		{"shop-web-api-http", "shop", "web-api", "http"},
		{"team-a-prod-web-80", "team-a-prod", "web", "80"},
		{"team-a-web-80", "team-a", "web", "80"},
		{"shop-web-80@kubernetes", "shop", "web", "80"},
		{"outbound|9080||reviews.bookinfo.svc.cluster.local", "bookinfo", "reviews", "9080"},
		{"upstream-default-backend", "", "", ""},
		{"web@docker", "", "", ""},
		{"web-80", "", "", ""},
		{"-", "", "", ""},
	} {
		b, ok := splitUpstream([]byte(c.in), nss)
		assert.Equal(t, c.ns != "", ok, c.in)
		assert.Equal(t, []string{c.ns, c.svc, c.port}, []string{string(b.namespace), string(b.service), string(b.port)}, c.in)
	}
}

func TestClientAddress(t *testing.T) {
	trusted, err := parsePrefixes([]string{"10.0.0.0/8", "192.0.2.7"})
	require.NoError(t, err)
	for _, c := range []struct {
		peer, xff, want string
		via             bool
	}{
		{"203.0.113.5", "", "203.0.113.5", false},
		{"203.0.113.5", "198.51.100.1", "203.0.113.5", false},                  // an untrusted peer's header is not believed
		{"10.1.2.3", "198.51.100.1", "198.51.100.1", true},                     // a load balancer
		{"10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.7", "198.51.100.1", true}, // a spoofed first hop is skipped
		{"10.1.2.3", "10.9.9.9", "10.9.9.9", true},                             // all trusted: the first one
		{"", "198.51.100.1, 203.0.113.8", "203.0.113.8", true},                 // Envoy: the hop it added
	} {
		got, via := clientAddress([]byte(c.peer), []byte(c.xff), trusted)
		assert.Equal(t, c.want, string(got), "%s via %s", c.peer, c.xff)
		assert.Equal(t, c.via, via, "%s via %s", c.peer, c.xff)
	}
	_, err = parsePrefixes([]string{"not-an-ip"})
	assert.ErrorContains(t, err, "neither a CIDR nor an address")
}

func TestPodFromPath(t *testing.T) {
	m, ok := podFromPath("/var/log/containers/ingress-nginx-controller-x2x4z_ingress-nginx_controller-" + containerID + ".log")
	require.True(t, ok)
	assert.Equal(t, podMeta{namespace: "ingress-nginx", pod: "ingress-nginx-controller-x2x4z", container: "controller", containerID: containerID}, m)
	m, ok = podFromPath("/var/log/pods/kube-system_traefik-5d8f_0d5b1c8e-93f1-4c55-a7d2-1b1f0e7d2c11/traefik/0.log")
	require.True(t, ok)
	assert.Equal(t, podMeta{namespace: "kube-system", pod: "traefik-5d8f", uid: "0d5b1c8e-93f1-4c55-a7d2-1b1f0e7d2c11", container: "traefik"}, m)
	_, ok = podFromPath("/var/log/nginx/access.log")
	assert.False(t, ok)
	_, ok = podFromPath("/var/log/containers/odd.log")
	assert.False(t, ok)
}
