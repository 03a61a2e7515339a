// Package k8stest runs a real etcd and kube-apiserver for tests: no fakes, real
// authentication, RBAC, admission and audit. The binaries come from
// hack/build-k8s-binaries.sh; see BinDir.
//
//	c := k8stest.Start(t, k8stest.Options{AuditLog: true})
//	cs := kubernetes.NewForConfigOrDie(c.Config)        // admin (system:masters)
//	alice := kubernetes.NewForConfigOrDie(c.ConfigAs("alice")) // no RBAC grants
package k8stest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
)

// Versions of the binaries hack/build-k8s-binaries.sh builds; they name the cache dir.
const (
	EtcdVersion       = "v3.6.16"
	KubernetesVersion = "v1.36.3"
)

// startTimeout bounds the wait for etcd health and apiserver /readyz together.
const startTimeout = 2 * time.Minute

// DefaultAuditPolicy records every request at every stage with request and response
// bodies: what tests of audit consumers want, far too much for production.
var DefaultAuditPolicy = []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
`)

// Options configures Start. The zero value gives a cluster with no audit backend.
type Options struct {
	// AuditPolicy is the YAML audit policy; nil means DefaultAuditPolicy.
	AuditPolicy []byte
	// AuditLog writes JSON audit events to Cluster.AuditLogPath.
	AuditLog bool
	// AuditWebhookKubeconfig enables the batching webhook backend with this
	// kubeconfig (see WebhookKubeconfig); batches are flushed at least every second.
	AuditWebhookKubeconfig []byte
	// ExtraArgs are added to the kube-apiserver command line; one of the same
	// --name as a default replaces it (list flags would add up, not override).
	ExtraArgs []string
	// CA signs the serving and client certificates; nil means a new one. A caller that
	// needs certificates before Start (a kubelet's, the apiserver's kubelet client) passes its own.
	CA *testcerts.CA
	// Wrapper, when set, starts the apiserver as Wrapper[0] with Wrapper[1:], then the
	// apiserver's path and flags: e.g. unshare, to give it a resolver of its own.
	Wrapper []string
	// ServingHosts are the names and addresses the serving certificate covers; nil
	// means loopback only. A node's pods reach the apiserver by its Service's ClusterIP.
	ServingHosts []string
}

// Cluster is a running etcd + kube-apiserver, stopped by the test's cleanup.
type Cluster struct {
	Config       *rest.Config // admin (system:masters) via bearer token, TLS verified
	URL          string       // https://127.0.0.1:<port>
	CAPEM        []byte       // CA of the serving certificate (and of client certs)
	AdminToken   string
	Dir          string // holds certs, config files, etcd data and process logs
	AuditLogPath string // set when Options.AuditLog
	EtcdURL      string // http://127.0.0.1:<port>, etcd's client URL (see CompactEtcd)
	// ServiceAccountKey is the file of the key that signs service-account tokens (and
	// verifies them): a controller-manager that mints tokens needs it.
	ServiceAccountKey string

	t             testing.TB
	ca            *testcerts.CA
	bin           string
	apiserverArgs []string
	wrapper       []string
	apiserver     *Process
}

// BinDir returns the directory holding etcd and kube-apiserver: $KUBEBUILDER_ASSETS,
// else the build script's cache ($OTELCOL_K8SSEC_CACHE or ~/.cache/otelcol-k8ssec).
// When they are missing the test fails, or is skipped under -short: CI must never
// pass by silently not running these tests.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("OTELCOL_K8SSEC_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatalf("k8stest: %v", err)
			}
			cache = filepath.Join(home, ".cache", "otelcol-k8ssec")
		}
		dir = filepath.Join(cache, "k8s-bin", "etcd-"+EtcdVersion+"-k8s-"+KubernetesVersion)
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(dir, bin)); err != nil || fi.Mode()&0o111 == 0 {
			msg := fmt.Sprintf("k8stest: no executable %s in %s; run hack/build-k8s-binaries.sh "+
				"(builds etcd %s and kube-apiserver %s, ~15 min once) or set KUBEBUILDER_ASSETS",
				bin, dir, EtcdVersion, KubernetesVersion)
			if testing.Short() {
				t.Skip(msg)
			}
			t.Fatal(msg)
		}
	}
	return dir
}

// Start runs etcd and kube-apiserver and returns once /readyz passes. Everything is
// stopped, and on failure the processes' output tails logged, in t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := BinDir(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	etcdURL := startEtcd(ctx, t, bin, dir)

	ca := opts.CA
	if ca == nil {
		ca = testcerts.NewCA(t)
	}
	c := &Cluster{Dir: dir, t: t, ca: ca, bin: bin, wrapper: opts.Wrapper, AdminToken: randomHex(t), EtcdURL: etcdURL}
	c.CAPEM = c.ca.CertPEM()
	port := testenv.FreePort(t)
	c.URL = "https://127.0.0.1:" + strconv.Itoa(port)

	certPEM, keyPEM := c.ca.Server(t, opts.ServingHosts...)
	servingCert, servingKey := testcerts.WriteFiles(t, dir, "serving", certPEM, keyPEM)
	caFile := writeFile(t, dir, "ca.crt", c.CAPEM)
	saKey := writeFile(t, dir, "service-account.key", ecKeyPEM(t))
	c.ServiceAccountKey = saKey
	// Static tokens: token,user,uid,"groups". Other identities use client certs.
	tokens := writeFile(t, dir, "tokens.csv", []byte(c.AdminToken+`,admin,admin,"system:masters"`+"\n"))
	policy := opts.AuditPolicy
	if policy == nil {
		policy = DefaultAuditPolicy
	}

	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		"--client-ca-file=" + caFile,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		// No controller-manager mints service-account tokens, so pods would be refused.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--audit-policy-file=" + writeFile(t, dir, "audit-policy.yaml", policy),
	}
	if opts.AuditLog {
		c.AuditLogPath = filepath.Join(dir, "audit.log")
		args = append(args, "--audit-log-path="+c.AuditLogPath, "--audit-log-format=json")
	}
	if opts.AuditWebhookKubeconfig != nil {
		args = append(args,
			"--audit-webhook-config-file="+writeFile(t, dir, "audit-webhook.kubeconfig", opts.AuditWebhookKubeconfig),
			"--audit-webhook-mode=batch",
			"--audit-webhook-batch-max-wait=1s",
			"--audit-webhook-initial-backoff=1s",
		)
	}
	c.apiserverArgs = mergeFlags(args, opts.ExtraArgs)
	c.Config = c.restConfig()
	c.Config.BearerToken = c.AdminToken
	c.StartAPIServer()
	return c
}

// StopAPIServer stops kube-apiserver (etcd keeps running): what a control-plane outage
// looks like to the clients. StartAPIServer brings it back.
func (c *Cluster) StopAPIServer() {
	c.t.Helper()
	c.apiserver.Stop()
}

// StartAPIServer starts kube-apiserver with the command line Start gave it and waits
// until /readyz passes. Start calls it; after StopAPIServer, it is a restart.
func (c *Cluster) StartAPIServer() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// Each run's output apart: a restart's failure quotes its own lines.
	name := "kube-apiserver"
	if c.apiserver != nil {
		name += "." + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	cmd := append([]string{filepath.Join(c.bin, "kube-apiserver")}, c.apiserverArgs...)
	if len(c.wrapper) > 0 {
		cmd = append(append([]string{}, c.wrapper...), cmd...)
	}
	c.apiserver = StartProcess(c.t, c.Dir, name, cmd[0], cmd[1:]...)
	c.waitReady(ctx, c.apiserver)
}

// Issue returns a client certificate and key (PEM) for user in groups, from the
// cluster's CA, for a process that authenticates with files (a kubelet, a scheduler).
func (c *Cluster) Issue(user string, groups ...string) (certPEM, keyPEM []byte) {
	c.t.Helper()
	return c.ca.Client(c.t, user, groups...)
}

// mergeFlags returns args with each of extra replacing the flag of the same --name,
// or appended.
func mergeFlags(args, extra []string) []string {
	out := append([]string(nil), args...)
	for _, e := range extra {
		name, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, a := range out {
			if n, _, _ := strings.Cut(a, "="); n == name && strings.HasPrefix(name, "--") {
				out[i], replaced = e, true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// ConfigAs returns a client config authenticated as user in groups, by a client
// certificate from the cluster's CA (real x509 authentication, no impersonation).
// Kubernetes adds system:authenticated itself.
func (c *Cluster) ConfigAs(user string, groups ...string) *rest.Config {
	c.t.Helper()
	cfg := c.restConfig()
	cfg.CertData, cfg.KeyData = c.ca.Client(c.t, user, groups...)
	return cfg
}

func (c *Cluster) restConfig() *rest.Config {
	// client-go's default rate limits, as in production: a component under
	// test must work within them. A test's own load generator may lift them.
	return &rest.Config{
		Host:            c.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAPEM},
	}
}

// waitReady polls the authenticated /readyz until it answers ok, the apiserver
// exits, or ctx ends; failures quote the apiserver's last words.
func (c *Cluster) waitReady(ctx context.Context, apiserver *Process) {
	c.t.Helper()
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		c.t.Fatalf("k8stest: %v", err)
	}
	hc.Timeout = 5 * time.Second
	var last string
	for {
		if gone, err := apiserver.Exited(); gone {
			c.t.Fatalf("k8stest: kube-apiserver did not start: %v\nstderr tail:\n%s", err, tail(apiserver.stderrPath, 30))
		}
		resp, err := hc.Get(c.URL + "/readyz?verbose")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("k8stest: kube-apiserver not ready after %v; last /readyz: %s\nstderr tail:\n%s",
				startTimeout, last, tail(apiserver.stderrPath, 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startEtcd runs a single-member etcd on loopback and waits for /health.
func startEtcd(ctx context.Context, t testing.TB, bin, dir string) string {
	t.Helper()
	clientURL := "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	peerURL := "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	etcd := StartProcess(t, dir, "etcd", filepath.Join(bin, "etcd"),
		"--name=k8stest",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL,
		"--unsafe-no-fsync", // test data is throwaway; fsync dominates start time on slow disks
		"--log-level=warn",
	)
	for {
		if gone, err := etcd.Exited(); gone {
			t.Fatalf("k8stest: etcd did not start: %v\nstderr tail:\n%s", err, tail(etcd.stderrPath, 30))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return clientURL
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("k8stest: etcd not healthy after %v\nstderr tail:\n%s", startTimeout, tail(etcd.stderrPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WebhookKubeconfig builds the kubeconfig the apiserver's audit webhook backend reads
// (--audit-webhook-config-file): one cluster at url trusting caPEM, and a user that
// presents the client certificate, or nothing when clientCertPEM is nil.
func WebhookKubeconfig(url string, caPEM, clientCertPEM, clientKeyPEM []byte) []byte {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["audit-sink"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["apiserver"] = &clientcmdapi.AuthInfo{ClientCertificateData: clientCertPEM, ClientKeyData: clientKeyPEM}
	cfg.Contexts["audit"] = &clientcmdapi.Context{Cluster: "audit-sink", AuthInfo: "apiserver"}
	cfg.CurrentContext = "audit"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		panic("k8stest: encoding kubeconfig: " + err.Error()) // only on a bug here
	}
	return out
}

// Unthrottled returns a copy of cfg without client-side rate limits: for a test's
// load generator, which stands for a cluster's many kubelets and controllers,
// never for the component under test.
func Unthrottled(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	return cfg
}

// WriteKubeconfig writes a kubeconfig for cfg (this cluster's URL and CA, cfg's bearer
// token or client certificate) and returns its path, for a process that reads KUBECONFIG.
func (c *Cluster) WriteKubeconfig(cfg *rest.Config) string {
	c.t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: c.CAPEM}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken,
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "user"}
	kc.CurrentContext = "test"
	out, err := clientcmd.Write(*kc)
	if err != nil {
		c.t.Fatalf("k8stest: encoding kubeconfig: %v", err)
	}
	return writeFile(c.t, c.t.TempDir(), "kubeconfig", out)
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	return path
}

// ecKeyPEM makes the service-account signing key (ES256; the apiserver derives the
// verifying public key from the same file).
func ecKeyPEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	return hex.EncodeToString(b)
}
