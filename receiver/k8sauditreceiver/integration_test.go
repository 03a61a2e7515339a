package k8sauditreceiver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
)

var updateGolden = flag.Bool("update-golden", false, "recapture testdata/apiserver_audit.jsonl from the harness apiserver and rewrite the golden output")

// The secret value the test writes; it is in the apiserver's own log and must
// never be in a record.
const secretValue = "hunter2-do-not-leak"

// secretValueBase64 is how the apiserver writes it, in Secret data.
var secretValueBase64 = base64.StdEncoding.EncodeToString([]byte(secretValue))

// TestApiserverAuditExactlyOnce points a real kube-apiserver's webhook backend
// at the receiver (plain HTTP, then mutual TLS) and tails its audit log file
// with a second receiver; every event the apiserver logged must arrive exactly
// once through each path, with the attributes rules will read.
func TestApiserverAuditExactlyOnce(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		name := "plain-http"
		if mtls {
			name = "mtls"
		}
		t.Run(name, func(t *testing.T) { runApiserverAudit(t, mtls) })
	}
}

func runApiserverAudit(t *testing.T, mtls bool) {
	k8stest.BinDir(t) // fails with how to build the binaries; skips only under -short

	webhookSink := new(consumertest.LogsSink)
	var kubeconfig []byte
	url := startWebhook(t, newTelemetry(t), webhookSink, func(c *Config) {
		if !mtls {
			return
		}
		dir := t.TempDir()
		ca := testcerts.NewCA(t)
		cert, key := ca.Server(t, "127.0.0.1")
		certFile, keyFile := testcerts.WriteFiles(t, dir, "server", cert, key)
		caFile := filepath.Join(dir, "ca.crt")
		require.NoError(t, os.WriteFile(caFile, ca.CertPEM(), 0o600))
		c.Webhook.TLS = configoptional.Some(configtls.ServerConfig{
			Config: configtls.Config{CertFile: certFile, KeyFile: keyFile}, ClientCAFile: caFile})
		clientCert, clientKey := ca.Client(t, "kube-apiserver")
		kubeconfig = k8stest.WebhookKubeconfig("https://"+c.Webhook.NetAddr.Endpoint+c.Webhook.Path, ca.CertPEM(), clientCert, clientKey)
	})
	if !mtls {
		kubeconfig = k8stest.WebhookKubeconfig(url, nil, nil, nil)
	}
	cluster := k8stest.Start(t, k8stest.Options{AuditLog: true, AuditWebhookKubeconfig: kubeconfig})

	fileSink := new(consumertest.LogsSink)
	fr := startFileReceiver(t, newTelemetry(t), fileSink, filepath.Dir(cluster.AuditLogPath), t.TempDir())
	t.Cleanup(func() { fr.stop(t) })

	actions := performAuditedActions(t, cluster)

	// Ground truth: the apiserver's own log. Both paths must deliver all of it.
	var logged map[string]json.RawMessage
	require.Eventually(t, func() bool {
		logged = readAuditLog(t, cluster.AuditLogPath)
		for _, id := range actions {
			if _, ok := logged[id]; !ok {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "the apiserver logs every action")
	require.Contains(t, string(logged[actions["secret-read"]]), secretValueBase64,
		"the apiserver's own log holds the secret, so redaction has something to do")
	for name, sink := range map[string]*consumertest.LogsSink{"webhook": webhookSink, "file": fileSink} {
		require.Eventually(t, func() bool {
			got := recordsByID(sink)
			for id := range logged {
				if _, ok := got[id]; !ok {
					return false
				}
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "%s: every logged event arrives", name)
		counts := map[string]int{}
		for _, id := range auditIDs(sink) {
			counts[id]++
		}
		for id, n := range counts {
			assert.Equal(t, 1, n, "%s: audit ID %s arrived %d times", name, id, n)
		}
		checkActionRecords(t, name, recordsByID(sink), actions)
	}

	if *updateGolden && mtls {
		captureGolden(t, cluster.AuditLogPath, actions)
	}
}

// performAuditedActions does what an attacker or a careless admin would and
// returns, per action, the audit ID the apiserver gave it (from the
// Audit-Id response header).
func performAuditedActions(t *testing.T, cluster *k8stest.Cluster) map[string]string {
	ctx := t.Context()
	var audit k8stest.AuditIDs
	admin, err := kubernetes.NewForConfig(audit.Wrap(cluster.Config))
	require.NoError(t, err)
	alice, err := kubernetes.NewForConfig(audit.Wrap(cluster.ConfigAs("alice", "developers")))
	require.NoError(t, err)

	ids := map[string]string{}
	record := func(action string, f func() error, wantErr func(error) bool) {
		t.Helper()
		id, err := audit.Of(f)
		if wantErr == nil {
			require.NoError(t, err, action)
		} else {
			require.True(t, wantErr(err), "%s: unexpected result %v", action, err)
		}
		require.NotEmpty(t, id, action)
		ids[action] = id
	}
	record("namespace", func() error {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "audit-it"}}, metav1.CreateOptions{})
		return err
	}, nil)
	privileged := true
	record("privileged-pod", func() error {
		_, err := admin.CoreV1().Pods("audit-it").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "priv", Labels: map[string]string{"app": "priv"}},
			Spec: corev1.PodSpec{HostPID: true, Containers: []corev1.Container{{
				Name: "shell", Image: "busybox:1.36", Command: []string{"sleep", "3600"},
				SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
			}}},
		}, metav1.CreateOptions{})
		return err
	}, nil)
	record("hostpath-pod", func() error {
		_, err := admin.CoreV1().Pods("audit-it").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "hostpath"},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
					VolumeMounts: []corev1.VolumeMount{{Name: "etc", MountPath: "/host/etc"}}}},
				Volumes: []corev1.Volume{{Name: "etc", VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}},
			},
		}, metav1.CreateOptions{})
		return err
	}, nil)
	record("secret-create", func() error {
		_, err := admin.CoreV1().Secrets("audit-it").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			StringData: map[string]string{"password": secretValue},
		}, metav1.CreateOptions{})
		return err
	}, nil)
	record("secret-read", func() error {
		_, err := admin.CoreV1().Secrets("audit-it").Get(ctx, "db", metav1.GetOptions{})
		return err
	}, nil)
	record("secret-read-denied", func() error {
		_, err := alice.CoreV1().Secrets("audit-it").Get(ctx, "db", metav1.GetOptions{})
		return err
	}, apierrors.IsForbidden)
	record("cluster-admin-binding", func() error {
		_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "mallory-admin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "mallory"}},
		}, metav1.CreateOptions{})
		return err
	}, nil)
	// There is no kubelet, so the exec fails after admission, but the attempt
	// is what the audit log must show.
	record("pods-exec", func() error {
		return admin.CoreV1().RESTClient().Post().Namespace("audit-it").Resource("pods").Name("priv").
			SubResource("exec").Param("command", "sh").Param("stdin", "true").Do(ctx).Error()
	}, func(err error) bool { return err != nil })
	return ids
}

func readAuditLog(t *testing.T, path string) map[string]json.RawMessage {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	events := map[string]json.RawMessage{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e struct{ AuditID, Stage string }
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a line being written
		}
		if e.Stage == "ResponseComplete" || e.Stage == "Panic" {
			events[e.AuditID] = append(json.RawMessage(nil), sc.Bytes()...)
		}
	}
	return events
}

func recordsByID(sink *consumertest.LogsSink) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			lrs := rls.At(i).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out[idOf(lrs.At(k))] = lrs.At(k)
			}
		}
	}
	return out
}

// checkActionRecords asserts what a rule author relies on, per action.
func checkActionRecords(t *testing.T, path string, got map[string]plog.LogRecord, ids map[string]string) {
	attr := func(action, key string) any {
		lr, ok := got[ids[action]]
		require.True(t, ok, "%s: no record for %s", path, action)
		v, ok := lr.Attributes().Get(key)
		if !ok {
			return nil
		}
		return v.AsRaw()
	}
	dig := func(v any, keys ...any) any {
		for _, k := range keys {
			switch k := k.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				s, _ := v.([]any)
				if k >= len(s) {
					return nil
				}
				v = s[k]
			}
		}
		return v
	}

	assert.Equal(t, "admin", attr("namespace", "user.name"), path)
	assert.Equal(t, "namespaces", attr("namespace", "k8s.audit.object.resource"), path)
	assert.Equal(t, "audit-it", attr("namespace", "k8s.audit.object.name"), path)
	assert.Equal(t, "127.0.0.1", attr("namespace", "client.address"), path)
	assert.Equal(t, int64(201), attr("namespace", "http.response.status_code"), path)
	assert.Contains(t, attr("namespace", "user_agent.original"), "k8sauditreceiver.test", path)

	req := attr("privileged-pod", "k8s.audit.request_object")
	assert.Equal(t, true, dig(req, "spec", "containers", 0, "securityContext", "privileged"), path)
	assert.Equal(t, true, dig(req, "spec", "hostPID"), path)
	assert.Equal(t, "busybox:1.36", dig(req, "spec", "containers", 0, "image"), path)
	assert.Equal(t, "priv", attr("privileged-pod", "k8s.pod.name"), path)
	assert.Equal(t, "audit-it", attr("privileged-pod", "k8s.namespace.name"), path)
	assert.Equal(t, "create", attr("privileged-pod", "k8s.audit.verb"), path)
	assert.Equal(t, "allow", attr("privileged-pod", "k8s.audit.authorization.decision"), path)
	assert.Equal(t, "RequestResponse", attr("privileged-pod", "k8s.audit.level"), path)
	assert.Equal(t, "/etc", dig(attr("hostpath-pod", "k8s.audit.request_object"), "spec", "volumes", 0, "hostPath", "path"), path)

	assert.Equal(t, "<redacted>", dig(attr("secret-create", "k8s.audit.request_object"), "data", "password"), path)
	assert.Equal(t, "<redacted>", dig(attr("secret-create", "k8s.audit.response_object"), "data", "password"), path)
	assert.Equal(t, "<redacted>", dig(attr("secret-read", "k8s.audit.response_object"), "data", "password"), path)
	assert.Equal(t, "get", attr("secret-read", "k8s.audit.verb"), path)
	for _, lr := range got {
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(logsOf(lr))
		require.NoError(t, err)
		require.NotContains(t, string(b), secretValueBase64, "%s: the secret leaked into a record", path)
	}

	assert.Equal(t, "alice", attr("secret-read-denied", "user.name"), path)
	assert.Equal(t, []any{"developers", "system:authenticated"}, attr("secret-read-denied", "k8s.audit.user.groups"), path)
	assert.Equal(t, int64(403), attr("secret-read-denied", "http.response.status_code"), path)
	assert.Equal(t, "forbid", attr("secret-read-denied", "k8s.audit.authorization.decision"), path)
	assert.Equal(t, "Forbidden", attr("secret-read-denied", "k8s.audit.response.reason"), path)

	assert.Equal(t, "clusterrolebindings", attr("cluster-admin-binding", "k8s.audit.object.resource"), path)
	assert.Equal(t, "rbac.authorization.k8s.io", attr("cluster-admin-binding", "k8s.audit.object.api_group"), path)
	assert.Equal(t, "cluster-admin", dig(attr("cluster-admin-binding", "k8s.audit.request_object"), "roleRef", "name"), path)

	assert.Equal(t, "exec", attr("pods-exec", "k8s.audit.object.subresource"), path)
	assert.Equal(t, "create", attr("pods-exec", "k8s.audit.verb"), path)
	assert.Equal(t, "priv", attr("pods-exec", "k8s.pod.name"), path)
	assert.Contains(t, attr("pods-exec", "k8s.audit.request_uri"), "command=sh", path)
}

func logsOf(lr plog.LogRecord) plog.Logs {
	ld := plog.NewLogs()
	lr.CopyTo(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
	return ld
}

// captureGolden copies the apiserver's own log lines for the actions into
// testdata, so that TestGoldenMapping checks the mapping of real events.
func captureGolden(t *testing.T, logPath string, ids map[string]string) {
	logged := readAuditLog(t, logPath)
	var buf bytes.Buffer
	for _, action := range goldenActions {
		line, ok := logged[ids[action]]
		require.True(t, ok, action)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "apiserver_audit.jsonl"), buf.Bytes(), 0o644))
	t.Logf("captured %d events into testdata/apiserver_audit.jsonl", len(goldenActions))
}

// goldenActions fixes the order of the captured events.
var goldenActions = []string{"namespace", "privileged-pod", "hostpath-pod", "secret-create", "secret-read",
	"secret-read-denied", "cluster-admin-binding", "pods-exec"}
