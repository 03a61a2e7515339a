//go:build linux

package e2e

import (
	"errors"
	"fmt"
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

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// TestEnforcementInTheAgentsMountNamespace runs the built agent as a DaemonSet
// container does: in its own mount namespace, its root an overlayfs holding only
// the binary, the host's /proc (hostPID) and /sys bind-mounted in.
//   - a policy naming the agent's own executable as its container sees it is
//     refused at start (container_paths would name it);
//   - with container_paths, a binary that exists only in a container's root file
//     system is killed there, and an unlisted one runs;
//   - the agent's own executable run in its root (as `kubectl exec` would) is
//     never killed, even by a kill_comms entry naming it: the kernel compares the
//     overlayfs file with the agent's own;
//   - the paths with no file on the host are reported at start.
//
// Here pid 1's root cannot be read (this machine's init refuses ptrace access),
// so the agent looks paths up in its own root; a host seen through another root
// is tested in the probe package (TestPolicyKillsTheHostsFileSeenThroughItsRoot).
func TestEnforcementInTheAgentsMountNamespace(t *testing.T) {
	testenv.RequireRoot(t, "the agent's ebpf receiver and mount namespaces")
	busybox, err := exec.LookPath("busybox")
	testenv.Require(t, err == nil, "busybox (busybox-static) is the container's binary")
	bin := binary(t)
	slice := testSlice(t)
	base := t.TempDir()
	dir := func(parts ...string) string {
		d := filepath.Join(append([]string{base}, parts...)...)
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	copyExe := func(from, to string) {
		data, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, data, 0o755))
	}
	// The agent's image: the binary alone.
	lower, upper, work, root, state := dir("lower"), dir("upper"), dir("work"), dir("root"), dir("state")
	copyExe(bin, filepath.Join(lower, "otelcol-k8ssec"))
	// A container's root: a binary the host does not have.
	container := dir("container")
	copyExe(busybox, filepath.Join(dir("container", "usr", "bin"), "k8ssec-inside"))
	copyExe(busybox, filepath.Join(container, "usr", "bin", "k8ssec-spare"))

	health, metrics := testenv.FreePort(t), testenv.FreePort(t)
	script := strings.Join([]string{
		fmt.Sprintf("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s", lower, upper, work, root),
		fmt.Sprintf("mkdir -p %[1]s/proc %[1]s/sys %[1]s/state", root),
		fmt.Sprintf("mount --rbind /proc %s/proc", root),
		fmt.Sprintf("mount --rbind /sys %s/sys", root),
		fmt.Sprintf("mount --bind %s %s/state", state, root),
		// The kubelet gives every container an /etc/hosts (the agent's self-metrics listen on localhost).
		fmt.Sprintf("mkdir -p %[1]s/etc && touch %[1]s/etc/hosts && mount --bind /etc/hosts %[1]s/etc/hosts", root),
		fmt.Sprintf("exec chroot %s /otelcol-k8ssec \"$@\"", root),
	}, " && ")
	startAgent := func(killPaths string) *collector {
		return start(t, "unshare", base, []string{
			"K8S_NODE_NAME=node-1", "K8SSEC_STORAGE_DIR=/state",
			fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", health),
			fmt.Sprintf("K8SSEC_METRICS_PORT=%d", metrics),
		}, "--mount", "--propagation", "private", "--", "sh", "-c", script, "agent",
			"--config", "k8ssec:agent",
			"--set", "receivers::ebpf::kubernetes::auth_type=none",
			"--set", "receivers::ebpf::cgroup_path="+slice,
			"--set", "receivers::ebpf::events=[process.exec,process.exit]",
			"--set", "receivers::ebpf::enforcement::kill_paths="+killPaths,
			"--set", "receivers::ebpf::enforcement::kill_comms=[otelcol-k8ssec]",
			"--set", "receivers::ebpf::enforcement::container_paths=true",
			// No gateway here: the records go to the log.
			"--set", "service::pipelines::logs::exporters=[debug]",
			"--set", "service::pipelines::metrics::exporters=[debug]",
			"--set", "exporters::debug::verbosity=detailed")
	}
	refused := startAgent("[/usr/bin/k8ssec-inside,/otelcol-k8ssec]")
	select {
	case <-refused.exited:
		assert.Contains(t, refused.output.String(), `"/otelcol-k8ssec" is this agent's own executable`)
	case <-time.After(30 * time.Second):
		t.Fatal("an agent whose policy names its own executable is running")
	}
	agent := startAgent("[/usr/bin/k8ssec-inside]")
	agent.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", health))
	pid := agent.cmd.Process.Pid
	self, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "otelcol-k8ssec"), self, "the agent runs from its overlay root")
	hostNS, _ := os.Readlink("/proc/1/ns/mnt")
	agentNS, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
	require.NotEqual(t, hostNS, agentNS, "the agent is in its own mount namespace")

	cg, err := os.Open(slice)
	require.NoError(t, err)
	defer cg.Close()
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		return cmd.Run()
	}
	killed := func(err error) bool {
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	}

	err = run("chroot", container, "/usr/bin/k8ssec-inside", "true")
	assert.True(t, killed(err), "a container's own binary, by container path: %v", err)
	err = run("chroot", "/proc/"+strconv.Itoa(pid)+"/root", "/otelcol-k8ssec", "--version")
	assert.NoError(t, err, "the agent's own executable, in its root, is never killed (kill_comms names it)")
	err = run("chroot", container, "/usr/bin/k8ssec-spare")
	assert.False(t, killed(err), "an unlisted copy in the container runs (busybox, which knows no applet by that name): %v", err)

	out := agent.output.String()
	assert.True(t, agent.running(), "the agent is still running")
	assert.Contains(t, out, "enforcement paths with no file on the host now")
	warning := out[strings.Index(out, "enforcement paths with no file on the host now"):]
	warning, _, _ = strings.Cut(warning, "\n")
	assert.Contains(t, warning, "/usr/bin/k8ssec-inside")
	assert.Contains(t, warning, "any container's file at that path")
	if _, err := os.Readlink("/proc/1/ns/mnt"); err != nil {
		assert.Contains(t, out, "pid 1's mount namespace cannot be read", "said, where this machine's init refuses it")
	}
	assert.Eventually(t, func() bool {
		return strings.Contains(agent.output.String(), "k8ssec.enforcement.rule: Str(/usr/bin/k8ssec-inside)")
	},
		10*time.Second, 100*time.Millisecond, "the exec record names the entry it matched")
}
