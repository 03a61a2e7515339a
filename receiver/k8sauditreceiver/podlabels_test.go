package k8sauditreceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver/internal/metadatatest"
)

// A real apiserver's audit log, tailed with pod_labels on, as a user allowed
// only to list and watch pods: the pods/exec event on a pod that existed before
// the receiver started, and the create of a pod made after, carry the pods'
// labels; an event about something else carries none.
func TestPodLabelsFromARealApiserver(t *testing.T) {
	cluster := k8stest.Start(t, k8stest.Options{AuditLog: true})
	admin, err := kubernetes.NewForConfig(cluster.Config)
	require.NoError(t, err)
	ctx := t.Context()
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/shop/web:1"}}}}
	}
	_, err = admin.CoreV1().Pods("shop").Create(ctx, pod("web-0", map[string]string{"app": "web", "team": "payments"}), metav1.CreateOptions{})
	require.NoError(t, err)

	// What gateway-rbac.yaml grants for this: list and watch on pods.
	const user = "pod-labels-reader"
	_, err = admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Setenv("KUBECONFIG", cluster.WriteKubeconfig(cluster.ConfigAs(user)))

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Webhook.Enabled = false
	files := cfg.Files.GetOrInsertDefault()
	files.Include = []string{filepath.Join(filepath.Dir(cluster.AuditLogPath), "audit*.log")}
	files.StartAt = "beginning"
	files.PollInterval = 20 * time.Millisecond
	cfg.Files = configoptional.Some(*files)
	cfg.PodLabels = PodLabelsConfig{Enabled: true, AuthType: k8sclient.AuthKubeConfig}
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.LogsSink)
	rcv, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), cfg, sink)
	require.NoError(t, err)
	storage := storagetest.Start(t, t.TempDir())
	require.NoError(t, rcv.Start(context.Background(), storagetest.Host(componenttest.NewNopHost(), storage)))
	t.Cleanup(func() {
		require.NoError(t, rcv.Shutdown(context.Background()))
		require.NoError(t, storage.Shutdown(context.Background()))
	})

	// An exec into web-0: refused here (no node runs it), audited all the same.
	err = admin.CoreV1().RESTClient().Post().Namespace("shop").Resource("pods").Name("web-0").SubResource("exec").
		Param("command", "sh").Param("stdout", "true").Do(ctx).Error()
	require.Error(t, err)
	_, err = admin.CoreV1().Pods("shop").Create(ctx, pod("api-0", map[string]string{"app": "api"}), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	var exec, create, cm plog.LogRecord
	require.Eventually(t, func() bool {
		for _, lr := range recordsByID(sink) {
			a := lr.Attributes()
			sub, _ := a.Get(attrObjSubresource)
			name, _ := a.Get(attrObjName)
			verb, _ := a.Get(attrVerb)
			res, _ := a.Get(attrObjResource)
			stage, _ := a.Get(attrStage)
			if stage.Str() != "ResponseComplete" {
				continue
			}
			switch {
			case sub.Str() == "exec" && name.Str() == "web-0":
				exec = lr
			case res.Str() == "pods" && verb.Str() == "create" && name.Str() == "api-0" && sub.Str() == "":
				create = lr
			case res.Str() == "configmaps" && verb.Str() == "create" && name.Str() == "settings":
				cm = lr
			}
		}
		return exec != (plog.LogRecord{}) && create != (plog.LogRecord{}) && cm != (plog.LogRecord{})
	}, 30*time.Second, 100*time.Millisecond, "the exec, the pod create and the ConfigMap create are read")

	labels := func(lr plog.LogRecord) map[string]string {
		out := map[string]string{}
		for k, v := range lr.Attributes().All() {
			if len(k) > len(podLabelPrefix) && k[:len(podLabelPrefix)] == podLabelPrefix {
				out[k[len(podLabelPrefix):]] = v.Str()
			}
		}
		return out
	}
	assert.Equal(t, map[string]string{"app": "web", "team": "payments"}, labels(exec), "the exec'd pod's labels")
	assert.Equal(t, map[string]string{"app": "api"}, labels(create), "the created pod's labels")
	assert.Empty(t, labels(cm), "a ConfigMap has no pod")
}

func TestPodLabelsAuthTypeIsValidated(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.PodLabels = PodLabelsConfig{Enabled: true, AuthType: "none"}
	assert.ErrorContains(t, cfg.Validate(), `pod_labels.auth_type "none"`)
	cfg.PodLabels.Enabled = false
	assert.NoError(t, cfg.Validate(), "off: auth_type is not read")
}
