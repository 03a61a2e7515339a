//go:build unix

// Package e2e runs the ocb-built otelcol-k8ssec binary the way a user does: with no
// config file (--config k8ssec:standalone), an audit EventList posted to its webhook
// as a kube-apiserver would, and the JSON lines it writes read back.
//
// It needs <repo>/_build/otelcol-k8ssec: `make build` (or `make test`, which builds it).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
)

const binaryName = "otelcol-k8ssec"

// agentBinaryName is the slim node-agent build (distributions/otelcol-k8ssec-agent),
// what the DaemonSet runs.
const agentBinaryName = "otelcol-k8ssec-agent"

// binary returns the path of the ocb-built full collector, failing (or skipping
// under -short) when it has not been built.
func binary(t *testing.T) string { return built(t, binaryName) }

// agentBinary returns the path of the ocb-built slim agent.
func agentBinary(t *testing.T) string { return built(t, agentBinaryName) }

func built(t *testing.T, name string) string {
	t.Helper()
	// The test runs in distributions/otelcol-k8ssec/e2e; the repository root is three up.
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "builder-config.yaml"), "repository root not found from the test's directory")
	bin := filepath.Join(root, "_build", name)
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("%s is missing (%v): run make build", bin, err)
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return bin
}

// syncBuffer collects the collector's output for the failure report.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// collector is one running otelcol-k8ssec process.
type collector struct {
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

// start runs the binary in its own process group; t.Cleanup kills the group.
func start(t *testing.T, bin, dir string, env []string, args ...string) *collector {
	t.Helper()
	c := &collector{output: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = dir
	// The gateway configs' Prometheus endpoint listens on 0.0.0.0:9464, and the tests
	// run several replicas on this one machine: each its own port, unless env says.
	// The gateway's k8s_audit watches pods through its service account: there is
	// none here, so off unless env gives it an apiserver.
	prom := fmt.Sprintf("K8SSEC_PROMETHEUS_ENDPOINT=127.0.0.1:%d", testenv.FreePort(t))
	c.cmd.Env = append(append(os.Environ(), prom, "K8SSEC_POD_LABELS=false"), env...) // the last of a key wins
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", binaryName, c.output.String())
		}
	})
	return c
}

func (c *collector) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// waitHealthy polls the health_check extension until it answers 200.
func (c *collector) waitHealthy(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.True(t, c.running(), "collector exited before it was healthy: %v", c.err)
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "health check %s not ready within 60s (last error: %v)", url, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// auditEvents builds what a kube-apiserver's webhook backend posts: an EventList of
// ResponseComplete events, one of them a privileged pod create with its request body.
func auditEvents(t *testing.T, now time.Time) (*auditv1.EventList, []string) {
	t.Helper()
	privileged := true
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "debugger", Namespace: "default"},
		Spec: corev1.PodSpec{
			HostPID: true,
			Containers: []corev1.Container{{
				Name:            "shell",
				Image:           "busybox:1.36",
				Command:         []string{"sleep", "infinity"},
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
			}},
		},
	}
	podJSON, err := json.Marshal(pod)
	require.NoError(t, err)

	received := metav1.NewMicroTime(now.Add(-50 * time.Millisecond))
	completed := metav1.NewMicroTime(now)
	user := authnv1.UserInfo{Username: "alice@example.com", UID: "u-1", Groups: []string{"developers", "system:authenticated"}}
	ids := []string{"e2e-" + strconv.FormatInt(now.UnixNano(), 36) + "-list", "", ""}
	ids[1] = strings.Replace(ids[0], "-list", "-get", 1)
	ids[2] = strings.Replace(ids[0], "-list", "-create", 1)
	base := func(id, verb, uri string, level auditv1.Level, code int32) auditv1.Event {
		return auditv1.Event{
			Level:                    level,
			AuditID:                  types.UID(id),
			Stage:                    auditv1.StageResponseComplete,
			RequestURI:               uri,
			Verb:                     verb,
			User:                     user,
			SourceIPs:                []string{"10.1.2.3"},
			UserAgent:                "kubectl/v1.36.3 (linux/amd64)",
			ResponseStatus:           &metav1.Status{Code: code},
			RequestReceivedTimestamp: received,
			StageTimestamp:           completed,
			Annotations:              map[string]string{"authorization.k8s.io/decision": "allow"},
		}
	}
	list := base(ids[0], "list", "/api/v1/namespaces/default/pods?limit=500", auditv1.LevelMetadata, 200)
	list.ObjectRef = &auditv1.ObjectReference{Resource: "pods", Namespace: "default", APIVersion: "v1"}
	get := base(ids[1], "get", "/api/v1/namespaces/kube-system/secrets/bootstrap-token", auditv1.LevelMetadata, 403)
	get.ObjectRef = &auditv1.ObjectReference{Resource: "secrets", Namespace: "kube-system", Name: "bootstrap-token", APIVersion: "v1"}
	get.ResponseStatus.Status = metav1.StatusFailure
	get.ResponseStatus.Reason = metav1.StatusReasonForbidden
	create := base(ids[2], "create", "/api/v1/namespaces/default/pods", auditv1.LevelRequestResponse, 201)
	create.ObjectRef = &auditv1.ObjectReference{Resource: "pods", Namespace: "default", Name: "debugger", APIVersion: "v1"}
	create.RequestObject = &runtime.Unknown{Raw: podJSON, ContentType: runtime.ContentTypeJSON}

	return &auditv1.EventList{
		TypeMeta: metav1.TypeMeta{APIVersion: "audit.k8s.io/v1", Kind: "EventList"},
		Items:    []auditv1.Event{list, get, create},
	}, ids
}

// readAuditRecords parses the file exporter's output (one OTLP/JSON logs export
// request per line) into the k8s.audit records it holds, by audit ID. A last line
// still being written is ignored; the caller polls.
func readAuditRecords(path string) (map[string]plog.LogRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	records := map[string]plog.LogRecord{}
	var unmarshaler plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		logs, err := unmarshaler.UnmarshalLogs(line)
		if err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) && bytes.HasSuffix(data, line) {
				break // partial last line
			}
			return nil, fmt.Errorf("%s: line is not OTLP/JSON logs: %w", path, err)
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() != "k8s.audit" {
						continue
					}
					if id, ok := lr.Attributes().Get("k8s.audit.id"); ok {
						records[id.AsString()] = lr
					}
				}
			}
		}
	}
	return records, sc.Err()
}

func attr(lr plog.LogRecord, key string) string {
	if v, ok := lr.Attributes().Get(key); ok {
		return v.AsString()
	}
	return ""
}

// startStandalone runs the binary with its embedded standalone config on free
// loopback ports, waits until it is healthy, and says where its webhook
// listens and where it writes.
func startStandalone(t *testing.T) (c *collector, auditPort int, out string) {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	auditPort, healthPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	out = filepath.Join(dir, "out.jsonl")
	c = start(t, bin, dir, []string{
		fmt.Sprintf("K8SSEC_AUDIT_ENDPOINT=127.0.0.1:%d", auditPort),
		"K8SSEC_OUTPUT=" + out,
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", healthPort),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", metricsPort),
	}, "--config", "k8ssec:standalone")
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", healthPort))
	return c, auditPort, out
}

func TestStandaloneWebhookToFile(t *testing.T) {
	c, auditPort, out := startStandalone(t)

	list, ids := auditEvents(t, time.Now())
	body, err := json.Marshal(list)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/k8s-audit", auditPort), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	respBody := new(bytes.Buffer)
	_, _ = respBody.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "webhook answered: %s", respBody)

	var records map[string]plog.LogRecord
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var err error
		records, err = readAuditRecords(out)
		if !assert.NoError(ct, err) {
			return
		}
		for _, id := range ids {
			if assert.Contains(ct, records, id) {
				assert.NotEmpty(ct, attr(records[id], "k8s.audit.verb"), "record %s has no k8s.audit.verb", id)
			}
		}
	}, 30*time.Second, 100*time.Millisecond, "%s never held all of %v", out, ids)

	assert.Equal(t, "list", attr(records[ids[0]], "k8s.audit.verb"))
	assert.Equal(t, "get", attr(records[ids[1]], "k8s.audit.verb"))
	create := records[ids[2]]
	assert.Equal(t, "create", attr(create, "k8s.audit.verb"))
	assert.Equal(t, "pods", attr(create, "k8s.audit.object.resource"))
	assert.Equal(t, "alice@example.com", attr(create, "user.name"))
	reqObj, ok := create.Attributes().Get("k8s.audit.request_object")
	if assert.True(t, ok, "the pod create carries its request object") {
		// Whether a string of JSON or a map, the privileged flag must survive.
		var s string
		if reqObj.Type() == pcommon.ValueTypeStr {
			s = reqObj.Str()
		} else {
			b, err := json.Marshal(reqObj.AsRaw())
			require.NoError(t, err)
			s = string(b)
		}
		assert.Contains(t, s, `"privileged":true`)
	}

	// A graceful stop: SIGTERM, then exit 0 within the shutdown budget.
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		assert.NoError(t, c.err, "collector exit status after SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("collector still running 30s after SIGTERM")
	}
}

// Every configuration the binary embeds must validate against the components it was
// built with, in the environment its deployment gives it (deploy_test.go).
func TestEmbeddedConfigsValidate(t *testing.T) {
	for _, name := range config.Names() {
		t.Run(name, func(t *testing.T) {
			out, err := validate(t, deployEnv(t, name), "--config", "k8ssec:"+name)
			assert.NoError(t, err, "validate k8ssec:%s:\n%s", name, out)
		})
	}
}

func TestUnknownEmbeddedConfigListsKnown(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "validate", "--config", "k8ssec:nosuch").CombinedOutput()
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr), "validate of an unknown config must fail, got %v:\n%s", err, out)
	assert.Contains(t, string(out), `no embedded configuration named "nosuch"`)
	assert.Contains(t, string(out), "standalone")
}

// TestStandaloneFromRealApiserver points a real kube-apiserver's webhook audit
// backend at the built binary: what an administrator does to the cluster must
// land in the output file, one record per audit event, and the default rules
// must raise their alerts on it, each carrying its evidence's audit ID.
func TestStandaloneFromRealApiserver(t *testing.T) {
	k8stest.BinDir(t)
	_, auditPort, out := startStandalone(t)

	cluster := k8stest.Start(t, k8stest.Options{AuditWebhookKubeconfig: k8stest.WebhookKubeconfig(
		fmt.Sprintf("http://127.0.0.1:%d/k8s-audit", auditPort), nil, nil, nil)})
	var audit k8stest.AuditIDs
	cs, err := kubernetes.NewForConfig(audit.Wrap(cluster.Config))
	require.NoError(t, err)
	ctx := t.Context()
	do := func(what string, f func() error) string {
		id, err := audit.Of(f)
		require.NoError(t, err, what)
		require.NotEmpty(t, id, what)
		return id
	}
	nsID := do("namespace", func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{})
		return err
	})
	privileged := true
	podID := do("privileged pod", func() error {
		_, err := cs.CoreV1().Pods("e2e").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "priv"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}},
		}, metav1.CreateOptions{})
		return err
	})
	bindingID := do("cluster-admin binding", func() error {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "mallory-admin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "mallory"}},
		}, metav1.CreateOptions{})
		return err
	})
	do("secret create", func() error {
		_, err := cs.CoreV1().Secrets("e2e").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
			StringData: map[string]string{"password": "hunter2"}}, metav1.CreateOptions{})
		return err
	})
	secretReadID := do("secret read", func() error {
		_, err := cs.CoreV1().Secrets("e2e").Get(ctx, "db", metav1.GetOptions{})
		return err
	})

	var records map[string]plog.LogRecord
	var alerts map[string][]alert
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		var err error
		records, err = readAuditRecords(out)
		if !assert.NoError(ct, err) {
			return
		}
		for _, id := range []string{nsID, podID, bindingID, secretReadID} {
			assert.Contains(ct, records, id)
		}
		alerts, err = readAlerts(out)
		if assert.NoError(ct, err) {
			for _, rule := range []string{"Privileged pod created", "Binding to a privileged ClusterRole", "Secret read by a non-system identity"} {
				assert.Contains(ct, alerts, rule)
			}
		}
	}, 30*time.Second, 100*time.Millisecond, "%s never held the events and their alerts", out)

	assert.Equal(t, "namespaces", attr(records[nsID], "k8s.audit.object.resource"))
	assert.Equal(t, "admin", attr(records[podID], "user.name"))
	assert.Equal(t, "priv", attr(records[podID], "k8s.pod.name"))
	assert.Equal(t, "201", attr(records[podID], "http.response.status_code"))
	reqObj, ok := records[podID].Attributes().Get("k8s.audit.request_object")
	require.True(t, ok)
	assert.Contains(t, reqObj.AsString(), `"privileged":true`)
	assert.Contains(t, attr(records[podID], "security_rule.matched"), "Privileged pod created", "the event is annotated")

	for rule, id := range map[string]string{
		"Privileged pod created":               podID,
		"Binding to a privileged ClusterRole":  bindingID,
		"Secret read by a non-system identity": secretReadID,
	} {
		a := alerts[rule][0]
		assert.Equal(t, id, attr(a.LogRecord, "k8s.audit.id"), "%s: the alert names its evidence", rule)
		assert.Equal(t, "k8s_audit", attr(a.LogRecord, "security_rule.ruleset.name"), rule)
		assert.NotEmpty(t, attr(a.LogRecord, "security_rule.mitre.techniques"), rule)
		assert.NotEmpty(t, a.Body().AsString(), rule)
	}
	assert.Equal(t, plog.SeverityNumberError, alerts["Privileged pod created"][0].SeverityNumber())
}

// alert is a security.alert record with its resource: the resource of the
// event that raised it (a kernel event's process, container and pod).
type alert struct {
	plog.LogRecord
	Resource pcommon.Map
}

// readAlerts returns the security.alert records of the output file by rule name.
func readAlerts(path string) (map[string][]alert, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	alerts := map[string][]alert{}
	var unmarshaler plog.JSONUnmarshaler
	for _, line := range bytes.Split(data, []byte("\n")) {
		logs, err := unmarshaler.UnmarshalLogs(line)
		if err != nil {
			continue // blank, or the last line still being written
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == "security.alert" {
						name := attr(lr, "security_rule.name")
						alerts[name] = append(alerts[name], alert{lr, rl.Resource().Attributes()})
					}
				}
			}
		}
	}
	return alerts, nil
}
