//go:build linux

package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// dashboardMetrics returns every metric name the shipped Grafana dashboards'
// queries select, parsed as PromQL (Grafana's $__ intervals and the dashboard's
// variables filled in first), by dashboard file.
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboard in distributions/otelcol-k8ssec/dashboards")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "6h", "$__interval", "1m", "$severity", ".*")
	out := map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(raw, &dash), f)
		seen := map[string]bool{}
		for _, p := range dash.Panels {
			require.NotEmpty(t, p.Targets, "%s: panel %q has no query", f, p.Title)
			for _, tg := range p.Targets {
				expr, err := parser.ParseExpr(vars.Replace(tg.Expr))
				require.NoError(t, err, "%s: panel %q: %s", f, p.Title, tg.Expr)
				parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
					if v, ok := n.(*parser.VectorSelector); ok && !seen[v.Name] {
						seen[v.Name] = true
						out[f] = append(out[f], v.Name)
					}
					return nil
				})
			}
		}
	}
	return out
}

// The privileged pods' alert count, with the namespace of the pods: two.
var auditAlert = regexp.MustCompile(`(?m)^k8ssec_alerts_total\{[^}]*namespace="default"[^}]*rule="Privileged pod created"[^}]*\} 2$`)

var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// scrape returns the gateway's Prometheus endpoint: the metric names it
// exposes (histograms' _bucket, _sum and _count as such) and the body.
func scrape(url string) (map[string]bool, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if m := sampleName.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "#") {
			names[m[1]] = true
		}
	}
	return names, string(body), nil
}

// The dashboard's queries name series the gateway exports: the real gateway
// (k8ssec:gateway) and the real slim agent (k8ssec:agent) run as processes with
// mutual TLS between them; an audit event of a privileged pod raises an alert at the gateway,
// the agent's ingress_log reads ingress-nginx lines from a container log and
// its ebpf receiver watches this test's cgroup (its counts go with the events); then the gateway's Prometheus
// endpoint must hold every metric name the dashboard uses, and the alert count
// with its rule, severity and namespace.
func TestDashboardQueriesNameExportedSeries(t *testing.T) {
	testenv.RequireRoot(t, "the agent loads BPF programs")
	want := dashboardMetrics(t)

	d := newDeployment(t) // the backend the gateway exports to, and a cgroup for the agent
	dir := t.TempDir()
	serverCA, agentCA, auditCA := testcerts.NewCA(t), testcerts.NewCA(t), testcerts.NewCA(t)
	cert, key := serverCA.Server(t, "127.0.0.1")
	srvCrt, srvKey := testcerts.WriteFiles(t, dir, "gateway", cert, key)
	cert, key = agentCA.Client(t, "node-1")
	agentCrt, agentKey := testcerts.WriteFiles(t, dir, "agent", cert, key)
	auditPEM, auditKeyPEM := auditCA.Client(t, "kube-apiserver")
	files := map[string][]byte{"server-ca.crt": serverCA.CertPEM(), "agent-ca.crt": agentCA.CertPEM(), "audit-ca.crt": auditCA.CertPEM()}
	for name, pem := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), pem, 0o644))
	}
	promPort := testenv.FreePort(t)

	start(t, d.bin, d.gwDir, []string{
		"K8SSEC_BACKEND_ENDPOINT=" + d.backend,
		"K8SSEC_BACKEND_CA_FILE=" + d.backendCA,
		"K8SSEC_TLS_CERT_FILE=" + srvCrt, "K8SSEC_TLS_KEY_FILE=" + srvKey,
		"K8SSEC_AUDIT_CLIENT_CA_FILE=" + filepath.Join(dir, "audit-ca.crt"),
		"K8SSEC_AGENT_CA_FILE=" + filepath.Join(dir, "agent-ca.crt"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(d.gwDir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", d.gwHealth),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", d.gwMetrics),
		fmt.Sprintf("K8SSEC_PROMETHEUS_ENDPOINT=127.0.0.1:%d", promPort),
	}, "--config", "k8ssec:gateway",
		"--set", fmt.Sprintf("receivers::otlp::protocols::grpc::endpoint=127.0.0.1:%d", d.otlpPort),
		"--set", fmt.Sprintf("receivers::k8s_audit::webhook::endpoint=127.0.0.1:%d", d.auditPort),
		// No apiserver (kube_events) and no rules tier here.
		"--set", "service::pipelines::logs::receivers=[k8s_audit,otlp]",
		"--set", "service::pipelines::logs/route::receivers=[k8s_audit,otlp]").
		waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", d.gwHealth))

	// ingress-nginx's container log, as the kubelet names and frames it.
	logDir := filepath.Join(dir, "containers")
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	logPath := filepath.Join(logDir, "ingress-nginx-controller-7d9c8b6f5-x2x4z_ingress-nginx_controller-"+strings.Repeat("ab", 32)+".log")
	require.NoError(t, os.WriteFile(logPath, nil, 0o644))
	start(t, agentBinary(t), d.agentDir, []string{
		"K8S_NODE_NAME=node-1",
		fmt.Sprintf("K8SSEC_GATEWAY_ENDPOINT=127.0.0.1:%d", d.otlpPort),
		"K8SSEC_CA_FILE=" + filepath.Join(dir, "server-ca.crt"),
		"K8SSEC_CERT_FILE=" + agentCrt, "K8SSEC_KEY_FILE=" + agentKey,
		"K8SSEC_STORAGE_DIR=" + filepath.Join(d.agentDir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", d.agentHealth),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", d.agentMetrics),
	}, "--config", "k8ssec:agent",
		"--set", "receivers::ebpf::kubernetes::auth_type=none",
		"--set", "receivers::ebpf::cgroup_path="+d.slice,
		"--set", "receivers::ingress_log::include=["+filepath.Join(logDir, "*ingress-nginx-controller*.log")+"]",
		"--set", "receivers::ingress_log::start_at=beginning",
		"--set", "receivers::ingress_log::metrics::interval=1s",
		"--set", "receivers::ebpf::metrics_interval=1s").
		waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", d.agentHealth))

	// Kernel events: a shell in the watched cgroup (events read; none lost).
	shellInContainer(t, d.slice, "ls /etc >/dev/null; sleep 1")
	// Ingress traffic, one of it a server error.
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	for i, status := range []int{200, 200, 404, 502} {
		line := fmt.Sprintf(`10.244.0.%d - - [06/Dec/2026:10:11:12 +0000] "GET /cart HTTP/1.1" %d 612 "-" "Mozilla/5.0" 431 0.004 [shop-web-8080] [] 10.244.1.7:8080 612 0.004 %d req-%d`, i+1, status, status, i)
		_, err = fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	// The apiserver's audit batch with a privileged pod created in namespace default:
	// an alert of the front tier's stateless rules.
	list, _ := auditEvents(t, time.Now())
	audit, err := json.Marshal(list)
	require.NoError(t, err)
	pool := serverCA.Pool()
	pair, err := tls.X509KeyPair(auditPEM, auditKeyPEM)
	require.NoError(t, err)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	post := func(body []byte) {
		resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/k8s-audit", d.auditPort), "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	post(audit)
	// A second batch, later, with an earlier event time (the apiserver batches and
	// retries): counts of batches add up, whatever order their events' times are in.
	time.Sleep(1500 * time.Millisecond)
	list, _ = auditEvents(t, time.Now().Add(-time.Minute))
	audit, err = json.Marshal(list)
	require.NoError(t, err)
	post(audit)

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort)
	var names map[string]bool
	var body string
	missing := func() []string {
		var m []string
		for _, metrics := range want {
			for _, name := range metrics {
				if !names[name] {
					m = append(m, name)
				}
			}
		}
		return m
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		names, body, err = scrape(url)
		if err == nil && len(missing()) == 0 && auditAlert.MatchString(body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the gateway's endpoint lacks %v (scrape error %v); dashboards: %v; it exposes:\n%s", missing(), err, want, body)
		}
		time.Sleep(time.Second)
	}
	for f, metrics := range want {
		t.Logf("%s: %v", filepath.Base(f), metrics)
	}
	// The alert count carries its labels.
	assert.Regexp(t, `(?m)^k8ssec_alerts_total\{[^}]*rule="[^"]+"[^}]*severity="[A-Za-z]+"`, body)
	assert.Regexp(t, `(?m)^k8ssec_ingress_requests_total\{[^}]*k8ssec_http_status_class="5xx"`, body)
	// The agent's series carry its node; the alert counts no resource label.
	assert.Regexp(t, `(?m)^k8ssec_ebpf_events_lost_total\{[^}]*event_name="process.exec"[^}]*k8s_node_name="node-1"[^}]*\} 0$`, body)
	assert.Regexp(t, `(?m)^k8ssec_ebpf_events_read_total\{[^}]*event_name="process.exec"[^}]*k8s_node_name="node-1"[^}]*\} [1-9]`, body)
	assert.NotRegexp(t, `(?m)^k8ssec_alerts_total\{[^}]*(container_id|process_pid)=`, body)
}
