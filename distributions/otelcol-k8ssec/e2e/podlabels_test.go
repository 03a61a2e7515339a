package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// The gateway (k8ssec:gateway, every rule in one tier) watches a real
// apiserver's pods: a pods/exec into a labelled pod raises the exec alert with
// the pod's labels, k8s.pod.label.<key>, for the backend and Alertmanager.
func TestGatewayExecAlertCarriesPodLabels(t *testing.T) {
	cluster := k8stest.Start(t, k8stest.Options{})
	admin, err := kubernetes.NewForConfig(cluster.Config)
	require.NoError(t, err)
	ctx := t.Context()
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Labels: map[string]string{"app": "web", "team": "payments"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/shop/web:1"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	ts := newTiers(t)
	f := &front{dir: t.TempDir(), auditPort: testenv.FreePort(t), otlpPort: testenv.FreePort(t), health: testenv.FreePort(t), metric: testenv.FreePort(t)}
	f.c = start(t, ts.bin, f.dir, []string{
		"K8SSEC_BACKEND_ENDPOINT=" + ts.backend,
		"K8SSEC_BACKEND_CA_FILE=" + ts.backendCA,
		"K8SSEC_TLS_CERT_FILE=" + ts.cert("gateway.crt"),
		"K8SSEC_TLS_KEY_FILE=" + ts.cert("gateway.key"),
		"K8SSEC_AUDIT_CLIENT_CA_FILE=" + ts.cert("audit-client-ca.crt"),
		"K8SSEC_AGENT_CA_FILE=" + ts.cert("agent-ca.crt"),
		"K8SSEC_STORAGE_DIR=" + filepath.Join(f.dir, "storage"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", f.health),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", f.metric),
		"K8SSEC_POD_LABELS=true",
		"KUBECONFIG=" + cluster.WriteKubeconfig(cluster.Config),
	}, "--config", "file:"+ts.frontConfig(t, f.dir, nil), // no rules tier: the throttled exec rule runs here
		"--set", "receivers::k8s_audit::pod_labels::auth_type=kubeConfig",
		"--set", fmt.Sprintf("receivers::otlp::protocols::grpc::endpoint=127.0.0.1:%d", f.otlpPort),
		"--set", fmt.Sprintf("receivers::k8s_audit::webhook::endpoint=127.0.0.1:%d", f.auditPort))
	f.c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", f.health))

	ts.postAuditTo(t, f, eventList(t, podsExec(uniqueID("exec", 0), "shop", "web-0", time.Now())))
	const rule = "Exec or attach into a pod"
	var got []alert
	require.Eventually(t, func() bool {
		alerts, err := readAlerts(ts.backendOut) // no file until the first export
		got = alerts[rule]
		return err == nil && len(got) > 0
	}, 30*time.Second, 200*time.Millisecond, "no %q alert reached the backend", rule)
	require.Len(t, got, 1)
	for k, want := range map[string]string{"k8s.pod.label.app": "web", "k8s.pod.label.team": "payments", "k8s.pod.name": "web-0"} {
		v, ok := got[0].Attributes().Get(k)
		if assert.True(t, ok, "the alert has no %s", k) {
			assert.Equal(t, want, v.Str(), k)
		}
	}
}
