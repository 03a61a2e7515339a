//go:build linux

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// The gateway's name in its serving certificate (make-certs.sh): the agents and
// the apiserver dial the Service by this name.
const gatewayServerName = "otelcol-k8ssec-gateway.otelcol-k8ssec.svc"

// deployment is the agent -> gateway -> backend chain of the Kubernetes deployment,
// run on this machine with the embedded agent and gateway configs and the
// certificates make-certs.sh makes. Only what a pod provides differs: loopback
// ports, files in temporary directories, and no Kubernetes API (auth_type none,
// the gateway's pipeline without kube_events, which manifests/ tests on a real
// apiserver).
type deployment struct {
	bin, certs                               string
	slice                                    string // the only cgroup the agent watches: this test's processes
	gwDir                                    string // the gateway's working and storage directory: kept across restarts
	agentDir                                 string // the agent's: its persistent queue survives a restart
	backendOut                               string // what reached the backend: OTLP/JSON lines
	backend                                  string // backend OTLP/gRPC address
	backendCA                                string
	otlpPort, auditPort, gwHealth, gwMetrics int
	agentHealth, agentMetrics                int
	agentKubeconfig                          string // "": the agent runs without the Kubernetes API (auth_type none)
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{bin: binary(t), certs: filepath.Join(t.TempDir(), "certs"), gwDir: t.TempDir(), agentDir: t.TempDir()}
	d.slice = testSlice(t)
	out, err := exec.Command("bash", filepath.Join("..", "manifests", "make-certs.sh"), d.certs).CombinedOutput()
	require.NoError(t, err, "make-certs.sh:\n%s", out)
	for _, p := range []*int{&d.otlpPort, &d.auditPort, &d.gwHealth, &d.gwMetrics, &d.agentHealth, &d.agentMetrics} {
		*p = testenv.FreePort(t)
	}
	d.startBackend(t)
	return d
}

func (d *deployment) cert(name string) string { return filepath.Join(d.certs, name) }

func (d *deployment) startBackend(t *testing.T) {
	d.backend, d.backendCA, d.backendOut = startBackend(t, d.bin)
}

// startBackend runs the binary once more as the backend a gateway exports to: an
// OTLP/gRPC receiver with TLS, writing what it receives to a file. It returns the
// receiver's address, the CA file of its certificate and the output file.
func startBackend(t *testing.T, bin string) (addr, caFile, out string) {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.NewCA(t)
	certPEM, keyPEM := ca.Server(t)
	crt, key := testcerts.WriteFiles(t, dir, "backend", certPEM, keyPEM)
	caFile = filepath.Join(dir, "backend-ca.crt")
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM(), 0o644))
	addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	out = filepath.Join(dir, "received.jsonl")
	health := testenv.FreePort(t)
	cfg := fmt.Sprintf(`
extensions:
  health_check: {endpoint: "127.0.0.1:%d"}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "%s", tls: {cert_file: "%s", key_file: "%s"}}
exporters:
  file: {path: "%s", format: json, rotation: {max_megabytes: 100}}
service:
  extensions: [health_check]
  pipelines:
    logs: {receivers: [otlp], exporters: [file]}
  telemetry:
    metrics: {level: none}
`, health, addr, crt, key, out)
	path := filepath.Join(dir, "backend.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	c := start(t, bin, dir, nil, "--config", "file:"+path)
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", health))
	return addr, caFile, out
}

func (d *deployment) startGateway(t *testing.T) *collector {
	t.Helper()
	c := start(t, d.bin, d.gwDir, []string{
		"K8SSEC_BACKEND_ENDPOINT=" + d.backend,
		"K8SSEC_BACKEND_CA_FILE=" + d.backendCA,
		"K8SSEC_TLS_CERT_FILE=" + d.cert("gateway.crt"),
		"K8SSEC_TLS_KEY_FILE=" + d.cert("gateway.key"),
		"K8SSEC_AUDIT_CLIENT_CA_FILE=" + d.cert("audit-client-ca.crt"),
		"K8SSEC_AGENT_CA_FILE=" + d.cert("agent-ca.crt"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(d.gwDir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", d.gwHealth),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", d.gwMetrics),
	}, "--config", "k8ssec:gateway",
		"--set", fmt.Sprintf("receivers::otlp::protocols::grpc::endpoint=127.0.0.1:%d", d.otlpPort),
		"--set", fmt.Sprintf("receivers::k8s_audit::webhook::endpoint=127.0.0.1:%d", d.auditPort),
		"--set", "service::pipelines::logs::receivers=[k8s_audit,otlp]",
		// No rules tier here (routing_test.go runs both tiers): the keyed copies
		// wait in the front's queue while its DNS name resolves to nothing.
		"--set", "service::pipelines::logs/route::receivers=[k8s_audit,otlp]")
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", d.gwHealth))
	return c
}

// startAgent runs the agent as its DaemonSet's container would: root with only
// the capabilities agent-daemonset.yaml adds, and no_new_privs.
func (d *deployment) startAgent(t *testing.T) *collector {
	t.Helper()
	setpriv, caps := agentContainer(t)
	auth, env := "none", []string{}
	if d.agentKubeconfig != "" {
		auth, env = "kubeConfig", []string{"KUBECONFIG=" + d.agentKubeconfig}
	}
	// The slim build, as the DaemonSet runs it.
	args := append(setpriv[1:], agentBinary(t), "--config", "k8ssec:agent",
		"--set", "receivers::ebpf::kubernetes::auth_type="+auth,
		// This machine's other processes (other tests, builds) would flood the pipeline.
		"--set", "receivers::ebpf::cgroup_path="+d.slice,
		// Dialled by address here; the certificate names the Service.
		"--set", "exporters::otlp_grpc/gateway::tls::server_name_override="+gatewayServerName)
	c := start(t, setpriv[0], d.agentDir, append([]string{
		"K8S_NODE_NAME=node-1",
		fmt.Sprintf("K8SSEC_GATEWAY_ENDPOINT=127.0.0.1:%d", d.otlpPort),
		"K8SSEC_CA_FILE=" + d.cert("gateway-ca.crt"),
		"K8SSEC_CERT_FILE=" + d.cert("agent.crt"),
		"K8SSEC_KEY_FILE=" + d.cert("agent.key"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(d.agentDir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", d.agentHealth),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", d.agentMetrics),
	}, env...), args...)
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", d.agentHealth))
	require.Equal(t, fmt.Sprintf("%#x", caps), fmt.Sprintf("%#x", capEff(t, c.cmd.Process.Pid)),
		"the agent's effective capabilities are the DaemonSet's")
	return c
}

// stop sends SIGTERM and waits for a clean exit.
func stop(t *testing.T, c *collector) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		require.NoError(t, c.err, "exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after SIGTERM")
	}
}

// clientTLS is a client of the gateway presenting the certificate name (a
// make-certs.sh base name, "" for none).
func (d *deployment) clientTLS(t *testing.T, name string, alpn ...string) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(d.cert("gateway-ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	cfg := &tls.Config{RootCAs: pool, ServerName: gatewayServerName, NextProtos: alpn}
	if name != "" {
		pair, err := tls.LoadX509KeyPair(d.cert(name+".crt"), d.cert(name+".key"))
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// postAudit posts an audit EventList to the gateway's webhook as the holder of
// cert would, returning the HTTP status or the TLS error.
func (d *deployment) postAudit(t *testing.T, cert string, body []byte) (int, error) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: d.clientTLS(t, cert)}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/k8s-audit", d.auditPort), "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// otlpAccepts says whether the gateway's OTLP listener keeps a TLS connection
// from the holder of cert: a gRPC server that accepted the client sends its
// SETTINGS frame, one that refused its certificate sends an alert.
func (d *deployment) otlpAccepts(t *testing.T, cert string) error {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.otlpPort), d.clientTLS(t, cert, "h2"))
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return err
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Read(make([]byte, 9))
	return err
}

// alertsFor returns the backend's alerts of rule for pid.
func (d *deployment) alertsFor(rule string, pid int64) (int, error) {
	alerts, err := readAlerts(d.backendOut)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range alerts[rule] {
		if p, ok := a.Resource.Get("process.pid"); ok && p.Int() == pid {
			n++
		}
	}
	return n, nil
}

func TestDeploymentAgentGatewayBackend(t *testing.T) {
	testenv.RequireRoot(t, "the agent's ebpf receiver")
	d := newDeployment(t)
	gw := d.startGateway(t)
	agent := d.startAgent(t)
	assert.Contains(t, gw.output.String(), "Sending to the OTLP backend as well: K8SSEC_BACKEND_ENDPOINT is set")

	t.Run("mutual TLS on both listeners", func(t *testing.T) {
		assert.NoError(t, d.otlpAccepts(t, "agent"), "the agent's certificate on OTLP")
		assert.Error(t, d.otlpAccepts(t, "audit-client"), "the apiserver's certificate must not send OTLP")
		assert.Error(t, d.otlpAccepts(t, ""), "no certificate on OTLP")

		list, ids := auditEvents(t, time.Now())
		body, err := json.Marshal(list)
		require.NoError(t, err)
		code, err := d.postAudit(t, "audit-client", body)
		require.NoError(t, err, "the apiserver's certificate on the webhook")
		assert.Equal(t, http.StatusOK, code)
		_, err = d.postAudit(t, "agent", body)
		assert.Error(t, err, "an agent's certificate must not post audit events")
		_, err = d.postAudit(t, "", body)
		assert.Error(t, err, "no certificate on the webhook")

		// The accepted batch reaches the backend, with the gateway's k8s_audit alerts.
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			records, err := readAuditRecords(d.backendOut)
			if assert.NoError(ct, err) {
				for _, id := range ids {
					assert.Contains(ct, records, id)
				}
			}
			alerts, err := readAlerts(d.backendOut)
			if assert.NoError(ct, err) {
				assert.NotEmpty(ct, alerts["Privileged pod created"])
			}
		}, 30*time.Second, 200*time.Millisecond)
	})

	t.Run("runtime alerts come from the agent, once", func(t *testing.T) {
		pid, _ := shellInContainer(t, d.slice, "echo k8ssec-deploy; sleep 1")
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			n, err := d.alertsFor("Shell spawned in a container", pid)
			assert.NoError(ct, err)
			assert.Positive(ct, n, "no alert for the shell yet; its exec records: %s", execRecordsOf(d.backendOut, pid))
		}, 30*time.Second, 200*time.Millisecond)
		time.Sleep(2 * time.Second) // a second copy, if the gateway also ran runtime, would be here by now
		n, err := d.alertsFor("Shell spawned in a container", pid)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the runtime pack runs on the agent only")
		assert.Equal(t, 1, stdoutAlerts(gw, "Shell spawned in a container", pid), "the agent's alert in the gateway's log too, once")
	})

	t.Run("a gateway outage and an agent restart lose nothing", func(t *testing.T) {
		stop(t, gw)
		pid, _ := shellInContainer(t, d.slice, "echo k8ssec-outage; sleep 1")
		// The agent watches only this test's processes: what it queues now is the
		// shell's events and alert, once the batch processor (timeout 1s) let them go.
		require.Eventually(t, func() bool { return queuedBytes(t, d.agentMetrics) > 0 }, 30*time.Second, 200*time.Millisecond,
			"the agent never queued anything while the gateway was down")
		time.Sleep(2 * time.Second)
		stop(t, agent)
		d.startAgent(t) // a new agent process, the same queue directory
		d.startGateway(t)
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			n, err := d.alertsFor("Shell spawned in a container", pid)
			assert.NoError(ct, err)
			assert.Equal(ct, 1, n, "the alert raised during the outage")
		}, 60*time.Second, 500*time.Millisecond)
	})
}

// queuedBytes reads otelcol_exporter_queue_size (bytes, with the agent's sizer)
// from the collector's self-metrics on localhost:port; -1 when unreadable.
func queuedBytes(t *testing.T, port int) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	total := -1.0
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "otelcol_exporter_queue_size{") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			total = max(total, 0) + v
		}
	}
	return total
}

// TestGatewayAlertsInItsLogOutOfTheBox: the gateway as shipped, with no backend set,
// starts and writes each alert as a line of Falco JSON on its standard output (what
// `kubectl logs` shows), and sends nothing anywhere else.
func TestGatewayAlertsInItsLogOutOfTheBox(t *testing.T) {
	d := newDeployment(t)
	d.backend = "" // K8SSEC_BACKEND_ENDPOINT unset, as in gateway-deployment.yaml
	gw := d.startGateway(t)

	list, ids := auditEvents(t, time.Now())
	body, err := json.Marshal(list)
	require.NoError(t, err)
	code, err := d.postAudit(t, "audit-client", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	var privileged falcoLine
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		for _, a := range falcoLines(gw) {
			if a.Rule == "Privileged pod created" {
				privileged = a
			}
		}
		assert.NotEmpty(ct, privileged.Rule, "no alert line in the gateway's output yet")
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, "k8s_audit", privileged.Source)
	assert.NotEmpty(t, privileged.Priority)
	assert.Contains(t, privileged.Output, "debugger")
	assert.Equal(t, ids[2], privileged.OutputFields["ka.auditid"])
	assert.NotContains(t, gw.output.String(), "otlp_grpc/backend", "no backend exporter runs")
	assert.NotContains(t, gw.output.String(), "Sending to the OTLP backend")
	_, err = os.Stat(d.backendOut)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing reached the backend")
}

// TestAgentWithoutTheAPIServer: the agent, with the DaemonSet's capabilities,
// whose apiserver does not answer (a node without kube-proxy or with the API down)
// starts, is healthy (readiness and liveness: the pipeline runs; pod identity is
// not part of it), stays up while its pod watch retries, and its alerts arrive
// with the container and a pod marked unresolved, and why.
func TestAgentWithoutTheAPIServer(t *testing.T) {
	testenv.RequireRoot(t, "the agent's ebpf receiver")
	d := newDeployment(t)
	d.startGateway(t)
	// A kubeconfig whose server has nothing listening.
	d.agentKubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(d.agentKubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, testenv.FreePort(t))), 0o600))
	started := time.Now()
	agent := d.startAgent(t) // returns once its health endpoint answers 200

	pid, cid := shellInContainer(t, d.slice, "echo k8ssec-no-api; sleep 1")
	var res map[string]any
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		alerts, err := readAlerts(d.backendOut)
		if !assert.NoError(ct, err) {
			return
		}
		for _, a := range alerts["Shell spawned in a container"] {
			if p, ok := a.Resource.Get("process.pid"); ok && p.Int() == pid {
				res = a.Resource.AsRaw()
			}
		}
		assert.NotNil(ct, res, "no alert for the shell yet; its exec records: %s", execRecordsOf(d.backendOut, pid))
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, cid, res["container.id"])
	assert.Equal(t, true, res["k8ssec.k8s.pod.pending"])
	assert.Equal(t, "pod_watch_not_synced", res["k8ssec.k8s.pod.pending_reason"])
	assert.NotContains(t, res, "k8s.pod.name")

	// Well past the 5 s the receiver waits for the pod watch: still running and
	// healthy, retrying.
	time.Sleep(time.Until(started.Add(15 * time.Second)))
	require.True(t, agent.running(), "the agent exited:\n%s", agent.output.String())
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", d.agentHealth))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, agent.output.String(), "Starting without pod metadata")
}

// falcoLine is an alert as the security_alerts exporter's stdout format writes it.
type falcoLine struct {
	Rule, Priority, Output, Source string
	OutputFields                   map[string]any `json:"output_fields"`
}

// falcoLines are the alert lines of a collector's output (its own log lines are not JSON).
func falcoLines(c *collector) []falcoLine {
	var out []falcoLine
	for line := range strings.Lines(c.output.String()) {
		var a falcoLine
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// stdoutAlerts counts the alert lines of rule for pid in c's output.
func stdoutAlerts(c *collector, rule string, pid int64) int {
	n := 0
	for _, a := range falcoLines(c) {
		if a.Rule == rule && a.OutputFields["proc.pid"] == float64(pid) {
			n++
		}
	}
	return n
}
