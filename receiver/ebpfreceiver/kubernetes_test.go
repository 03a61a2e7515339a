package ebpfreceiver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
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
