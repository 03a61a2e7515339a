package ebpfreceiver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor/processortest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
)

// TestRuleOnAPodLabelFiresOnKernelEvents: a rule reading a pod label
// (k8s.pod.label.team, which no table lists) fires on a shell the kernel saw
// in that pod, and not in a pod of another team. The pods are in the harness
// kube-apiserver, their containers real cgroups; the records go from this
// receiver through the security_rules processor, as in the agent.
func TestRuleOnAPodLabelFiresOnKernelEvents(t *testing.T) {
	requireRoot(t)
	c := k8stest.Start(t, k8stest.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cgroups := map[string]*testCgroup{}
	for team, digit := range map[string]string{"payments": "a", "search": "b"} {
		pod, err := cs.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: team + "-api", Labels: map[string]string{"team": team}},
			Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "api", Image: "api:1"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		cid := strings.Repeat(digit, 64)
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "api", Image: "api:1", ContainerID: "containerd://" + cid}}
		_, err = cs.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		require.NoError(t, err)
		cgroups[team] = makeContainerCgroup(t, string(pod.UID), cid)
	}
	t.Setenv("KUBECONFIG", c.WriteKubeconfig(c.Config))

	rulesPath := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(`
- rule: Shell in a payments pod
  events: [process.exec]
  condition: k8s.pod.label.team == "payments" && process.executable.name in ["sh", "dash", "bash"]
  severity: high
  output: shell in %{k8s.pod.name}
`), 0o600))
	sink := new(consumertest.LogsSink)
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules = []string{rulesPath}
	pcfg.Mode = securityrulesprocessor.ModeBoth
	pcfg.StrictAttributes = true
	require.NoError(t, pcfg.Validate())
	proc, err := pf.CreateLogs(ctx, processortest.NewNopSettings(pf.Type()), pcfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(ctx)) }()
	rcv := startReceiver(t, newTelemetry(t), proc, func(c *Config) {
		c.Events = []string{eventProcessExec}
		c.Kubernetes.AuthType = authKubeConfig
		c.Kubernetes.NodeName = "node-a"
	})
	defer func() { require.NoError(t, rcv.Shutdown(ctx)) }()

	for _, team := range []string{"payments", "search"} {
		cmd := cgroups[team].command("/bin/sh", "-c", "exit 0") // no exec of its own
		require.NoError(t, cmd.Run())
		got := attrMap(waitFor(t, sink, "process.exec", cmd.Process.Pid))
		assert.Equal(t, team, got["k8s.pod.label.team"], "the receiver puts the pod's label on the resource")
		assert.Equal(t, team+"-api", got["k8s.pod.name"])
	}
	var alerts []pcommon.Map
	for _, ld := range sink.AllLogs() {
		for _, e := range events(ld) {
			if e.EventName() == "security.alert" {
				alerts = append(alerts, e.Resource.Attributes())
			}
		}
	}
	require.Len(t, alerts, 1, "the payments pod's shell only")
	pod, _ := alerts[0].Get("k8s.pod.name")
	assert.Equal(t, "payments-api", pod.Str())
}
