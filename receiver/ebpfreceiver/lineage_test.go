package ebpfreceiver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// TestLineageAndDrift: with process.fork on, a shell that runs a dropped
// copy of /bin/true yields the fork (the child named, the parent's executable
// from the cache), the exec with its exec id and its parent's, and drift on
// the dropped binary only; the exit carries the exec's id.
func TestLineageAndDrift(t *testing.T) {
	requireRoot(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.Events = append(c.Events, eventProcessFork)
		c.Kubernetes.NodeName = "node-a"
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	dropped := filepath.Join(t.TempDir(), "dropped")
	orig, err := os.ReadFile("/bin/true")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dropped, orig, 0o755))
	sh := exec.Command("/bin/sh", "-c", dropped+"; /bin/true; exit 0")
	sh.Dir = filepath.Dir(dropped)
	require.NoError(t, sh.Run())
	shPid := sh.Process.Pid

	shExec := attrMap(waitFor(t, sink, "process.exec", shPid))
	idPattern := regexp.MustCompile(`^node-a:[0-9a-f-]{8}:[0-9]+:[0-9]+$`)
	shID, _ := shExec["k8ssec.process.exec_id"].(string)
	assert.Regexp(t, idPattern, shID)
	assert.NotContains(t, shExec, "k8ssec.process.drift")
	wd, err := filepath.EvalSymlinks(sh.Dir)
	require.NoError(t, err)
	assert.Equal(t, wd, shExec["process.working_directory"], "the cwd, read in the kernel")

	// The shell forks a child per command, then the child execs.
	require.Eventually(t, func() bool { return len(find(sink, "process.fork", shPid)) >= 2 }, 10*time.Second, 10*time.Millisecond)
	var children []int64
	for _, lr := range find(sink, "process.fork", shPid) {
		a := attrMap(lr)
		assert.Equal(t, realPath(t, "/bin/sh"), a["process.executable.path"], "the forking process, from the cache")
		assert.Equal(t, shID, a["k8ssec.process.exec_id"])
		children = append(children, a["k8ssec.process.child.pid"].(int64))
	}
	require.Len(t, children, 2, "one fork per command run")
	droppedExec := attrMap(waitFor(t, sink, "process.exec", int(children[0])))
	assert.Equal(t, dropped, droppedExec["process.executable.path"])
	assert.Equal(t, true, droppedExec["k8ssec.process.drift"], "written after the receiver started")
	assert.Equal(t, shID, droppedExec["k8ssec.process.parent.exec_id"])
	droppedID := droppedExec["k8ssec.process.exec_id"]
	assert.Regexp(t, idPattern, droppedID)
	assert.NotEqual(t, shID, droppedID)
	trueExec := attrMap(waitFor(t, sink, "process.exec", int(children[1])))
	assert.NotContains(t, trueExec, "k8ssec.process.drift", "/bin/true was there before")

	exit := attrMap(waitFor(t, sink, "process.exit", int(children[0])))
	assert.Equal(t, droppedID, exit["k8ssec.process.exec_id"])
}
