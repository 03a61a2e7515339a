package ebpfreceiver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
