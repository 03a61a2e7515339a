//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// tiers is the gateway of the Kubernetes deployment in its two tiers, run from
// the built binary on loopback: front replicas with the embedded gateway
// config (the rules tier named by the static resolver instead of DNS, since
// there is no headless Service here, and no kube_events, which needs an
// apiserver), rules replicas with the embedded gateway-rules config, and a
// backend that writes what it receives. The certificates are make-certs.sh's.
type tiers struct {
	*deployment
	rules        []string     // the rules replicas' OTLP addresses, in start order
	rulesMetrics []int        // their self-metrics ports
	rulesProcs   []*collector // and processes
	fronts       []*front
}

// front is one front-tier replica; its ports and directory outlive a restart.
type front struct {
	c                                   *collector
	dir                                 string
	auditPort, otlpPort, health, metric int
}

func newTiers(t *testing.T) *tiers {
	t.Helper()
	d := &deployment{bin: binary(t), certs: filepath.Join(t.TempDir(), "certs")}
	out, err := exec.Command("bash", filepath.Join("..", "manifests", "make-certs.sh"), d.certs).CombinedOutput()
	require.NoError(t, err, "make-certs.sh:\n%s", out)
	d.startBackend(t)
	return &tiers{deployment: d}
}

// startRules starts one more rules-tier replica and returns its address.
func (ts *tiers) startRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	health, metrics := testenv.FreePort(t), testenv.FreePort(t)
	c := start(t, ts.bin, dir, []string{
		"K8SSEC_BACKEND_ENDPOINT=" + ts.backend,
		"K8SSEC_BACKEND_CA_FILE=" + ts.backendCA,
		"K8SSEC_TLS_CERT_FILE=" + ts.cert("gateway.crt"),
		"K8SSEC_TLS_KEY_FILE=" + ts.cert("gateway.key"),
		"K8SSEC_GATEWAY_CA_FILE=" + ts.cert("gateway-ca.crt"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(dir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", health),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", metrics),
	}, "--config", "k8ssec:gateway-rules",
		"--set", "receivers::otlp::protocols::grpc::endpoint="+addr)
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", health))
	ts.rules = append(ts.rules, addr)
	ts.rulesMetrics = append(ts.rulesMetrics, metrics)
	ts.rulesProcs = append(ts.rulesProcs, c)
	return addr
}

// stopRules stops the rules replica at addr, as a scale-in does, and returns
// the records it had accepted: rulesAccepted counts the others only from now.
func (ts *tiers) stopRules(t *testing.T, addr string) float64 {
	t.Helper()
	i := slices.Index(ts.rules, addr)
	require.GreaterOrEqual(t, i, 0, "no rules replica at %s", addr)
	accepted := metricSum(ts.rulesMetrics[i], "otelcol_receiver_accepted_log_records", `receiver="otlp"`)
	stop(t, ts.rulesProcs[i])
	ts.rules = slices.Delete(ts.rules, i, i+1)
	ts.rulesMetrics = slices.Delete(ts.rulesMetrics, i, i+1)
	ts.rulesProcs = slices.Delete(ts.rulesProcs, i, i+1)
	return accepted
}

// frontConfig is the embedded gateway config with the rules tier given by
// address (the static resolver) and without kube_events. With no rules
// replicas it is the gateway before the tiers: every rule on every replica,
// nothing routed.
func (ts *tiers) frontConfig(t *testing.T, dir string, rules []string) string {
	t.Helper()
	// As the embedded provider gives it with K8SSEC_BACKEND_ENDPOINT set.
	conf, merged, err := config.Conf("gateway", func(string) string { return ts.backend })
	require.NoError(t, err)
	require.True(t, merged)
	cfg := conf.ToStringMap()
	lb := cfg["exporters"].(map[string]any)["loadbalancing/rules"].(map[string]any)
	lb["resolver"] = map[string]any{"static": map[string]any{"hostnames": rules}}
	for _, p := range cfg["service"].(map[string]any)["pipelines"].(map[string]any) {
		pipeline := p.(map[string]any)
		var kept []any
		for _, r := range pipeline["receivers"].([]any) {
			if r != "kube_events" {
				kept = append(kept, r)
			}
		}
		pipeline["receivers"] = kept
	}
	delete(cfg["receivers"].(map[string]any), "kube_events")
	if len(rules) == 0 {
		delete(cfg["service"].(map[string]any)["pipelines"].(map[string]any), "logs/route")
		delete(cfg["exporters"].(map[string]any), "loadbalancing/rules")
		cfg["processors"].(map[string]any)["security_rules"].(map[string]any)["tier"] = "all"
	}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, "front.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

// startFront starts a front replica routing to the rules replicas given, or
// restarts f with them (its persistent queue kept).
func (ts *tiers) startFront(t *testing.T, f *front, rules []string) *front {
	t.Helper()
	if f == nil {
		f = &front{dir: t.TempDir(), auditPort: testenv.FreePort(t), otlpPort: testenv.FreePort(t),
			health: testenv.FreePort(t), metric: testenv.FreePort(t)}
		ts.fronts = append(ts.fronts, f)
	}
	f.c = start(t, ts.bin, f.dir, []string{
		"K8SSEC_BACKEND_ENDPOINT=" + ts.backend,
		"K8SSEC_BACKEND_CA_FILE=" + ts.backendCA,
		"K8SSEC_TLS_CERT_FILE=" + ts.cert("gateway.crt"),
		"K8SSEC_TLS_KEY_FILE=" + ts.cert("gateway.key"),
		"K8SSEC_AUDIT_CLIENT_CA_FILE=" + ts.cert("audit-client-ca.crt"),
		"K8SSEC_AGENT_CA_FILE=" + ts.cert("agent-ca.crt"),
		"K8SSEC_GATEWAY_CA_FILE=" + ts.cert("gateway-ca.crt"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(f.dir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", f.health),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", f.metric),
	}, "--config", "file:"+ts.frontConfig(t, f.dir, rules),
		"--set", fmt.Sprintf("receivers::otlp::protocols::grpc::endpoint=127.0.0.1:%d", f.otlpPort),
		"--set", fmt.Sprintf("receivers::k8s_audit::webhook::endpoint=127.0.0.1:%d", f.auditPort))
	f.c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", f.health))
	return f
}

// postAuditTo posts an EventList to a front's webhook as the apiserver does.
func (ts *tiers) postAuditTo(t *testing.T, f *front, body []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.clientTLS(t, "audit-client")}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/k8s-audit", f.auditPort), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// exportOTLP sends logs to a front's OTLP listener as an agent does.
func (ts *tiers) exportOTLP(t *testing.T, f *front, ld plog.Logs) {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", f.otlpPort),
		grpc.WithTransportCredentials(credentials.NewTLS(ts.clientTLS(t, "agent"))))
	require.NoError(t, err)
	defer conn.Close()
	_, err = plogotlp.NewGRPCClient(conn).Export(t.Context(), plogotlp.NewExportRequestFromLogs(ld))
	require.NoError(t, err)
}

// auditCounts counts the backend's k8s.audit records by audit ID (readAuditRecords
// keeps one per ID; this says whether one came twice).
func auditCounts(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	var um plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		logs, err := um.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue // blank, or the last line being written
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == "k8s.audit" {
						counts[attr(lr, "k8s.audit.id")]++
					}
				}
			}
		}
	}
	return counts, sc.Err()
}

// rulesAccepted sums the records the rules replicas' OTLP receivers accepted
// since they started: a receiver answers once its rules have seen them.
func (ts *tiers) rulesAccepted() float64 {
	var total float64
	for _, port := range ts.rulesMetrics {
		total += metricSum(port, "otelcol_receiver_accepted_log_records", `receiver="otlp"`)
	}
	return total
}

// settle waits until the rules tier has accepted at least n records in all
// and then nothing more for a second (the fronts batch for 200 ms).
func (ts *tiers) settle(t *testing.T, n float64) {
	t.Helper()
	require.Eventually(t, func() bool { return ts.rulesAccepted() >= n }, 60*time.Second, 200*time.Millisecond,
		"the rules tier accepted %v records, want at least %v", ts.rulesAccepted(), n)
	last := ts.rulesAccepted()
	for {
		time.Sleep(time.Second)
		now := ts.rulesAccepted()
		if now == last {
			return
		}
		last = now
	}
}

// auditEvent is one audit event of the webhook's EventList as JSON.
type auditEvent map[string]any

func failedLogin(id, client string, at time.Time) auditEvent {
	ts := at.UTC().Format(time.RFC3339Nano)
	return auditEvent{"level": "Metadata", "auditID": id, "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces",
		"verb": "list", "user": map[string]any{"username": "system:anonymous"}, "sourceIPs": []string{client},
		"userAgent": "curl/8.5.0", "responseStatus": map[string]any{"code": 401},
		"requestReceivedTimestamp": ts, "stageTimestamp": ts}
}

func eventList(t *testing.T, items ...auditEvent) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
	require.NoError(t, err)
	return b
}

func uniqueID(prefix string, i int) string {
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(i)
}

// metricSum adds up the samples of metric (any suffix, such as _total) whose
// labels contain label, from the self-metrics on localhost:port; 0 when unreadable.
func metricSum(port int, metric, label string) float64 {
	v, _ := scrapeMetric(port, metric, label)
	return v
}

// scrapeMetric is metricSum that says when the endpoint did not answer. A
// counter that never moved is absent, and sums to 0.
func scrapeMetric(port int, metric, label string) (float64, error) {
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("localhost:%d/metrics: %s", port, resp.Status)
	}
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) || !strings.Contains(line, label) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total += v
		}
	}
	return total, sc.Err()
}
