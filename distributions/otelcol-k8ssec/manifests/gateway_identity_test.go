package manifests

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver"
)

// saConfig authenticates as a service account of the manifests (a client
// certificate whose subject is the account's user name and groups).
func saConfig(cluster *k8stest.Cluster, sa string) *rest.Config {
	return cluster.ConfigAs("system:serviceaccount:"+Namespace+":"+sa,
		"system:serviceaccounts", "system:serviceaccounts:"+Namespace)
}

// gatewayAsItself runs the real kube_events receiver, configured as gateway.yaml
// configures it (leader election, Lease and checkpoint ConfigMap), with nothing
// but the gateway ServiceAccount's RBAC: it must lead, emit an Event from another
// namespace and checkpoint, and be refused what it must not do.
func gatewayAsItself(t *testing.T, cluster *k8stest.Cluster, admin kubernetes.Interface) {
	ctx := t.Context()
	gw := saConfig(cluster, gatewayName)
	t.Setenv("KUBECONFIG", writeKubeconfig(t, gw))

	_, err := admin.CoreV1().Events("default").Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-1.deploy-test"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", APIVersion: "v1"},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet"},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	f := kubeeventsreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*kubeeventsreceiver.Config)
	cfg.AuthType = "kubeConfig"
	cfg.StartAt = "beginning"
	cfg.LeaderElection.LeaseName = leaseName
	cfg.LeaderElection.LeaseNamespace = Namespace // in the pod: its service account's namespace
	cfg.LeaderElection.Identity = "gateway-0"
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zap.WarnLevel)
	set := receivertest.NewNopSettings(f.Type())
	set.Logger = zap.New(core)
	sink := new(consumertest.LogsSink)
	rcv, err := f.CreateLogs(ctx, set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, rcv.Shutdown(context.Background())) })

	// The apiserver writes Events of its own (KubernetesDefaultServiceCIDRInconsistent
	// on this harness), so look for the test's among whatever arrives.
	require.Eventually(t, func() bool { return slices.Contains(reasons(sink), "BackOff") }, 30*time.Second, 100*time.Millisecond,
		"the receiver, as the gateway ServiceAccount, emitted no BackOff Event (it emitted %v); its warnings: %v",
		reasons(sink), messages(logs))

	lease, err := admin.CoordinationV1().Leases(Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	require.NoError(t, err, "the gateway creates its Lease")
	require.NotNil(t, lease.Spec.HolderIdentity)
	assert.Equal(t, "gateway-0", *lease.Spec.HolderIdentity)
	require.Eventually(t, func() bool {
		cm, err := admin.CoreV1().ConfigMaps(Namespace).Get(ctx, leaseName, metav1.GetOptions{})
		return err == nil && len(cm.Data) > 0
	}, 30*time.Second, 100*time.Millisecond, "the leader writes its checkpoint ConfigMap")
	for _, e := range logs.All() {
		assert.NotContains(t, strings.ToLower(e.Message+" "+toString(e.ContextMap()["error"])), "forbidden", "receiver log: %v", e)
	}

	// What it must not do, as real requests.
	gwcs, err := kubernetes.NewForConfig(gw)
	require.NoError(t, err)
	_, err = admin.CoreV1().Secrets(Namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "otelcol-k8ssec-gateway-tls"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = gwcs.CoreV1().Secrets(Namespace).Get(ctx, "otelcol-k8ssec-gateway-tls", metav1.GetOptions{})
	assert.True(t, apierrors.IsForbidden(err), "get its own TLS secret: %v", err)
	_, err = gwcs.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "list leases in kube-system: %v", err)
	// It lists pods (k8s_audit's pod_labels), and that is all it may do to them.
	_, err = gwcs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	assert.NoError(t, err, "list pods")
	err = gwcs.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{})
	assert.True(t, apierrors.IsForbidden(err), "delete a pod: %v", err)
}

func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	require.NoError(t, os.Chmod(path, 0o600))
	return path
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Message+" "+strings.TrimSpace(toString(e.ContextMap()["error"])))
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// reasons lists the k8s.event.reason of every record the sink holds.
func reasons(sink *consumertest.LogsSink) []string {
	var out []string
	for _, ld := range sink.AllLogs() {
		for i := range ld.ResourceLogs().Len() {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := range sls.Len() {
				lrs := sls.At(j).LogRecords()
				for k := range lrs.Len() {
					if v, ok := lrs.At(k).Attributes().Get("k8s.event.reason"); ok {
						out = append(out, v.AsString())
					}
				}
			}
		}
	}
	return out
}
