package nodee2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	// The gateway compresses with zstd: the sink's gRPC server must know it.
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// alert is one security.alert record the backend received, with its resource.
type alert struct {
	Rule     string
	Record   pcommon.Map
	Resource pcommon.Map
	Body     string
}

// get reads key from the record, then from the resource (kernel events keep the pod
// and container there; audit events name the pod acted on in the record).
func (a alert) get(key string) string {
	if v, ok := a.Record.Get(key); ok {
		return v.AsString()
	}
	if v, ok := a.Resource.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func (a alert) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s {", a.Rule, a.Body)
	for _, m := range []pcommon.Map{a.Record, a.Resource} {
		for k, v := range m.All() {
			if strings.HasPrefix(k, "k8s.") || strings.HasPrefix(k, "k8ssec.k8s.") || strings.HasPrefix(k, "container.") ||
				strings.HasPrefix(k, "process.executable") || k == "file.path" {
				fmt.Fprintf(&b, " %s=%s", k, v.AsString())
			}
		}
	}
	return b.String() + " }"
}

// sink is the backend the gateway's tiers export to: an OTLP/gRPC server with TLS
// that keeps the alerts (the events, which the gateway sends too, are counted only).
type sink struct {
	plogotlp.UnimplementedGRPCServer
	mu     sync.Mutex
	alerts []alert
	// enforced are the events that say the agent acted (k8ssec.enforcement.action).
	enforced []alert
	events   int
	addr     string
	// diagnose says more about the deployment when a wait fails.
	diagnose func() string
}

type metricsSink struct {
	pmetricotlp.UnimplementedGRPCServer
}

func (*metricsSink) Export(context.Context, pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	return pmetricotlp.NewExportResponse(), nil
}

func (s *sink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range req.Logs().ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				_, acted := lr.Attributes().Get("k8ssec.enforcement.action")
				if lr.EventName() != "security.alert" && !acted {
					s.events++
					continue
				}
				rec, res := pcommon.NewMap(), pcommon.NewMap()
				lr.Attributes().CopyTo(rec)
				rl.Resource().Attributes().CopyTo(res)
				a := alert{Record: rec, Resource: res, Body: lr.Body().AsString()}
				if acted {
					a.Rule = lr.EventName()
					s.enforced = append(s.enforced, a)
					continue
				}
				a.Rule = a.get("security_rule.name")
				s.alerts = append(s.alerts, a)
			}
		}
	}
	return plogotlp.NewExportResponse(), nil
}

// startSink listens on ip (the node's address, which pods reach) with a serving
// certificate from the gateway's CA (make-certs.sh's gateway-ca), so that the
// gateway's pods trust it with the ca.crt of their own Secret.
func startSink(t *testing.T, ip, certs string) *sink {
	t.Helper()
	cert := signServing(t, filepath.Join(certs, "gateway-ca.crt"), filepath.Join(certs, "gateway-ca.key"), ip)
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	s := &sink{addr: l.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	plogotlp.RegisterGRPCServer(srv, s)
	pmetricotlp.RegisterGRPCServer(srv, &metricsSink{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return s
}

// wait polls until an alert of rule satisfies match, and returns it.
func (s *sink) wait(t *testing.T, rule string, timeout time.Duration, match func(alert) bool) alert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, a := range s.alerts {
			if a.Rule == rule && match(a) {
				s.mu.Unlock()
				return a
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			diag := ""
			if s.diagnose != nil {
				diag = s.diagnose()
			}
			t.Fatalf("no %q alert matching within %v; the alerts of that rule:\n%s\nthe matching alerts of other rules:\n%s\n%s", rule, timeout,
				s.summary(func(a alert) bool { return a.Rule == rule }), s.summary(match), diag)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitEnforced polls until an event the agent acted on satisfies match.
func (s *sink) waitEnforced(t *testing.T, timeout time.Duration, match func(alert) bool) alert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		for _, a := range s.enforced {
			if match(a) {
				s.mu.Unlock()
				return a
			}
		}
		n := len(s.enforced)
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching enforcement record within %v (%d others)", timeout, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// distinctValues is the set of values of key among the alerts that satisfy match.
func (s *sink) distinctValues(match func(alert) bool, key string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, a := range s.alerts {
		if match(a) {
			out[a.get(key)] = true
		}
	}
	return out
}

// distinct is distinctValues as a sorted list.
func (s *sink) distinct(match func(alert) bool, key string) []string {
	var out []string
	for v := range s.distinctValues(match, key) {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// count is how many alerts of rule ("" for any) satisfy match.
func (s *sink) count(rule string, match func(alert) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.alerts {
		if (rule == "" || a.Rule == rule) && match(a) {
			n++
		}
	}
	return n
}

// summary lists the alerts that satisfy match: the first of each rule, with how many
// there were (a container's start alone raises dozens of one rule).
func (s *sink) summary(match func(alert) bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "(%d events, %d alerts in all)\n", s.events, len(s.alerts))
	counts := map[string]int{}
	var first []alert
	for _, a := range s.alerts {
		if match(a) {
			if counts[a.Rule] == 0 {
				first = append(first, a)
			}
			counts[a.Rule]++
		}
	}
	for _, a := range first {
		fmt.Fprintf(&b, "%dx %s\n", counts[a.Rule], a)
	}
	return b.String()
}

// inPod matches alerts about namespace/pod.
func inPod(ns, pod string) func(alert) bool {
	return func(a alert) bool { return a.get("k8s.namespace.name") == ns && a.get("k8s.pod.name") == pod }
}

// signServing issues a serving certificate for ip from the CA in caCrt/caKey (PEM,
// the key PKCS#8 as openssl genpkey writes it).
func signServing(t *testing.T, caCrt, caKey, ip string) tls.Certificate {
	t.Helper()
	crtPEM, err := os.ReadFile(caCrt)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(caKey)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatalf("sink: no PEM in %s or %s", caCrt, caKey)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caPriv, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(ca.PublicKey.(*ecdsa.PublicKey).Curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "backend"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caPriv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
