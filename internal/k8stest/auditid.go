package k8stest

import (
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// AuditIDs remembers the Audit-Id header the apiserver puts on every response,
// so that a test can find the audit event of the request it just made.
type AuditIDs struct{ last atomic.Value }

// Wrap returns a copy of cfg whose clients record into a.
func (a *AuditIDs) Wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if resp != nil {
				if id := resp.Header.Get("Audit-Id"); id != "" {
					a.last.Store(id)
				}
			}
			return resp, err
		})
	})
	return cfg
}

// Of runs f and returns the audit ID of the last response it got ("" if none)
// with f's error. Calls must not overlap.
func (a *AuditIDs) Of(f func() error) (string, error) {
	a.last.Store("")
	err := f()
	return a.last.Load().(string), err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
