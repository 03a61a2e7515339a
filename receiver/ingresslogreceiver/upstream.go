package ingresslogreceiver

import (
	"bytes"
	"net/netip"
)

// backend is the Kubernetes Service an upstream name points at.
type backend struct {
	namespace, service, port []byte
}

// splitUpstream reads the backend out of a proxy's upstream name:
// ingress-nginx's namespace-service-port, Traefik's namespace-service-port@kubernetes,
// Istio's outbound|port||service.namespace.svc.cluster.local. Names are
// ambiguous where namespaces hold '-': namespaces lists those to try first.
func splitUpstream(name []byte, namespaces [][]byte) (backend, bool) {
	if bytes.HasPrefix(name, []byte("outbound|")) || bytes.HasPrefix(name, []byte("inbound|")) {
		return splitIstio(name)
	}
	if at := bytes.IndexByte(name, '@'); at >= 0 {
		if !bytes.HasPrefix(name[at+1:], []byte("kubernetes")) {
			return backend{}, false // Traefik's docker, file, ... providers
		}
		name = name[:at]
	}
	if bytes.Equal(name, []byte("upstream-default-backend")) {
		return backend{}, false
	}
	last := bytes.LastIndexByte(name, '-')
	if last < 0 {
		return backend{}, false
	}
	rest, port := name[:last], name[last+1:]
	ns := -1
	for _, n := range namespaces {
		if len(n) < len(rest) && bytes.HasPrefix(rest, n) && rest[len(n)] == '-' && len(n) > ns {
			ns = len(n)
		}
	}
	if ns < 0 {
		ns = bytes.IndexByte(rest, '-')
	}
	if ns <= 0 || ns == len(rest)-1 || len(port) == 0 {
		return backend{}, false
	}
	return backend{namespace: rest[:ns], service: rest[ns+1:], port: port}, true
}

// splitIstio reads direction|port|subset|service.namespace.svc.<domain>.
func splitIstio(name []byte) (backend, bool) {
	parts := bytes.SplitN(name, []byte("|"), 4)
	if len(parts) != 4 {
		return backend{}, false
	}
	host := parts[3]
	dot := bytes.IndexByte(host, '.')
	if dot <= 0 {
		return backend{}, false
	}
	ns := host[dot+1:]
	if end := bytes.IndexByte(ns, '.'); end > 0 {
		ns = ns[:end]
	}
	return backend{namespace: ns, service: host[:dot], port: parts[1]}, len(ns) > 0
}

// clientAddress picks the client: the socket peer, unless the peer is a
// trusted proxy and X-Forwarded-For names someone before it; then the last
// address in X-Forwarded-For that is not a trusted proxy. With no peer (Envoy's
// default format) the last X-Forwarded-For entry is the one the proxy added.
func clientAddress(peer, xff []byte, trusted []netip.Prefix) (client []byte, viaXFF bool) {
	if len(xff) == 0 || (len(peer) > 0 && !isTrusted(peer, trusted)) {
		return peer, false
	}
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		hop := bytes.TrimSpace(xff[i+1:])
		if i < 0 {
			xff = nil
		} else {
			xff = xff[:i]
		}
		if len(hop) == 0 {
			continue
		}
		if len(peer) == 0 || len(xff) == 0 || !isTrusted(hop, trusted) {
			return hop, true
		}
	}
	return peer, false
}

func isTrusted(addr []byte, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	a, err := netip.ParseAddr(string(addr))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stripPort turns Envoy's and Traefik's address:port into the address.
func stripPort(b []byte) []byte {
	if len(b) > 0 && b[0] == '[' { // [v6]:port
		if end := bytes.IndexByte(b, ']'); end > 0 {
			return b[1:end]
		}
	}
	if i := bytes.LastIndexByte(b, ':'); i > 0 && bytes.IndexByte(b[:i], ':') < 0 {
		return b[:i]
	}
	return b
}
