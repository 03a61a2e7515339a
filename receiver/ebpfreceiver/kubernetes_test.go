package ebpfreceiver

import (
	"context"
	"net"
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
	"go.opentelemetry.io/collector/consumer/consumertest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
)

// TestStartsWithTheAPIServerUnreachable: the agent monitors from the start even
// when the apiserver does not answer (a node whose network is not up yet, an
// apiserver being upgraded): Start gives up waiting for the pod watch after
// podSyncTimeout, and events flow, with their container but no pod.
func TestStartsWithTheAPIServerUnreachable(t *testing.T) {
	requireRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://`+addr+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	t.Setenv("KUBECONFIG", kubeconfig)

	sink := new(consumertest.LogsSink)
	start := time.Now()
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.Events = []string{eventProcessExec}
		c.Kubernetes.AuthType = authKubeConfig
		c.Kubernetes.NodeName = "node-a"
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	assert.Less(t, time.Since(start), podSyncTimeout+5*time.Second, "Start waits for the pod watch no longer than podSyncTimeout")

	cmd := exec.Command("/bin/true", "k8ssec-degraded")
	require.NoError(t, cmd.Run())
	lr := waitFor(t, sink, "process.exec", cmd.Process.Pid)
	assert.Equal(t, []any{"/bin/true", "k8ssec-degraded"}, attrMap(lr)["process.command_args"])
}

// TestContainerNamedFromItsFirstExec: a container's first process carries its
// container.id, even when the container's cgroup was made a moment before and
// the process has exited by the time its event is read (so /proc/<pid>/cgroup
// is gone), several containers in a row (so a walk of the hierarchy, at most
// one a second, cannot be what names them): the cgroup is opened by its id.
func TestContainerNamedFromItsFirstExec(t *testing.T) {
	requireRoot(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.Events = []string{eventProcessExec}
		c.Kubernetes.AuthType = authNone
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	for i := range 3 {
		containerID := strings.Repeat(strconv.Itoa(7+i), 64)
		cg := makeContainerCgroup(t, "3f2a1b0c-4d5e-4f60-8a7b-9c0d1e2f3a4b", containerID)
		cmd := cg.command("/bin/true", "k8ssec-first-exec")
		require.NoError(t, cmd.Run())
		ev := waitFor(t, sink, "process.exec", cmd.Process.Pid)
		got := attrMap(ev)
		assert.Equal(t, containerID, got["container.id"], "container %d: %v", i, got)
		assert.Equal(t, "3f2a1b0c-4d5e-4f60-8a7b-9c0d1e2f3a4b", got["k8s.pod.uid"], "container %d", i)
	}
}

// makeContainerCgroup creates a cgroup named as the kubelet and containerd
// name a pod's container, below a test slice, removed when the test ends.
func makeContainerCgroup(t *testing.T, podUID, containerID string) *testCgroup {
	t.Helper()
	parent := makeCgroup(t)
	dir := filepath.Join(parent.path, "kubepods-besteffort-pod"+strings.ReplaceAll(podUID, "-", "_")+".slice", "cri-containerd-"+containerID+".scope")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	fd, err := os.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() {
		fd.Close()
		for d := dir; d != parent.path; d = filepath.Dir(d) {
			require.Eventually(t, func() bool { return os.Remove(d) == nil }, 5*time.Second, 20*time.Millisecond, "rmdir %s", d)
		}
	})
	return &testCgroup{path: dir, fd: fd}
}

// TestAPIServerUnreachableThenBack: the agent starts with its apiserver (a real
// one, internal/k8stest) unreachable. Its kernel events and its enforcement work
// from the start; a pod's container is named from its cgroup, and its events say
// the pod is not resolved and why (k8ssec.k8s.pod.pending_reason). Once the
// apiserver answers at that address, the watch (retrying all along) syncs and new
// events carry the pod.
func TestAPIServerUnreachableThenBack(t *testing.T) {
	requireRoot(t)
	c := k8stest.Start(t, k8stest.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "web", Image: "web:1"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	cid := strings.Repeat("d", 64)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: "web:1", ContainerID: "containerd://" + cid}}
	_, err = cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	cg := makeContainerCgroup(t, string(pod.UID), cid)

	// The agent's kubeconfig names an address where nothing listens yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	kubeconfig := c.WriteKubeconfig(c.Config)
	data, err := os.ReadFile(kubeconfig)
	require.NoError(t, err)
	require.Contains(t, string(data), c.URL)
	require.NoError(t, os.WriteFile(kubeconfig, []byte(strings.ReplaceAll(string(data), c.URL, "https://"+addr)), 0o600))
	t.Setenv("KUBECONFIG", kubeconfig)
	killme := filepath.Join(t.TempDir(), "k8ssec-apidown")
	copyFile(t, "/bin/true", killme)

	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.Events = []string{eventProcessExec}
		c.Kubernetes.AuthType = authKubeConfig
		c.Kubernetes.NodeName = "node-a"
		c.Enforcement.KillComms = []string{"k8ssec-apidown"}
	})
	defer func() { require.NoError(t, rcv.Shutdown(ctx)) }()

	// Unreachable: events flow, marked; enforcement kills.
	cmd := cg.command("/bin/true", "k8ssec-before")
	require.NoError(t, cmd.Run())
	got := attrMap(waitFor(t, sink, "process.exec", cmd.Process.Pid))
	assert.Equal(t, cid, got["container.id"])
	assert.Equal(t, string(pod.UID), got["k8s.pod.uid"])
	assert.Equal(t, true, got["k8ssec.k8s.pod.pending"])
	assert.Equal(t, "pod_watch_not_synced", got["k8ssec.k8s.pod.pending_reason"])
	assert.NotContains(t, got, "k8s.pod.name")
	killed := cg.command(killme)
	err = killed.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "enforcement with the apiserver unreachable")
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())

	// The apiserver answers at that address: new events carry the pod.
	c.ReachableAt(t, addr)
	var last map[string]any
	require.Eventually(t, func() bool {
		cmd := cg.command("/bin/true", "k8ssec-after")
		if cmd.Run() != nil {
			return false
		}
		last = attrMap(waitFor(t, sink, "process.exec", cmd.Process.Pid))
		return last["k8s.pod.name"] == "web-0"
	}, 60*time.Second, 500*time.Millisecond, "no event carried the pod once the apiserver answered: %v", last)
	assert.Equal(t, "default", last["k8s.namespace.name"])
	assert.Equal(t, "web", last["k8s.pod.label.app"])
	assert.NotContains(t, last, "k8ssec.k8s.pod.pending")
	assert.NotContains(t, last, "k8ssec.k8s.pod.pending_reason")
}
