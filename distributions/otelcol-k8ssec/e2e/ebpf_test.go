//go:build linux

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/podidentity"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// TestStandaloneShellInContainerAlerts runs a shell in a cgroup named the way
// containerd names a container's, on this machine's kernel: the built binary's
// ebpf receiver must see the exec and give it the container's identity, and
// the runtime rules must turn it into a security.alert.
func TestStandaloneShellInContainerAlerts(t *testing.T) {
	testenv.RequireRoot(t, "the ebpf receiver")
	_, _, out := startStandalone(t)

	pid, containerID := shellInContainer(t, testSlice(t), "echo k8ssec-e2e; sleep 1")

	var found alert
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		alerts, err := readAlerts(out)
		if !assert.NoError(ct, err) {
			return
		}
		for _, a := range alerts["Shell spawned in a container"] {
			if p, ok := a.Resource.Get("process.pid"); ok && p.Int() == pid { // the process is the event's resource, and the alert's
				found = a
				return
			}
		}
		assert.Fail(ct, "no alert for the shell yet", "pid %d; its exec records: %s", pid, execRecordsOf(out, pid))
	}, 30*time.Second, 200*time.Millisecond)

	assert.Contains(t, found.Body().AsString(), "in container "+containerID, "the alert names the container")
	assert.Equal(t, "runtime", attr(found.LogRecord, "security_rule.ruleset.name"))
	exe, _ := found.Resource.Get("process.executable.path")
	sh, err := filepath.EvalSymlinks("/bin/sh")
	require.NoError(t, err)
	assert.Equal(t, sh, exe.Str(), "the shell as the kernel resolved it (Debian's /bin/sh is dash)")
	id, _ := found.Resource.Get("container.id")
	assert.Equal(t, containerID, id.Str())
	assert.Equal(t, plog.SeverityNumberWarn2, found.SeverityNumber())
	techniques, _ := found.Attributes().Get("security_rule.mitre.techniques")
	assert.Contains(t, techniques.AsRaw(), "T1059.004")
}

// testSlice makes a cgroup for the test's processes below the cgroup2 root,
// removed when the test ends (after the cgroups made in it).
func testSlice(t *testing.T) string {
	t.Helper()
	mount, _, err := podidentity.FindCgroup2Mount("/proc/self/mountinfo")
	require.NoError(t, err)
	raw := make([]byte, 4)
	_, err = rand.Read(raw)
	require.NoError(t, err)
	slice := filepath.Join(mount, fmt.Sprintf("k8ssec-e2e-%d-%x.slice", os.Getpid(), raw))
	require.NoError(t, os.Mkdir(slice, 0o755))
	t.Cleanup(func() { _ = os.Remove(slice) })
	return slice
}

// shellInContainer runs script in an interactive /bin/sh in a new cgroup below slice, named the
// way containerd names a container's (under the systemd driver), and returns the
// shell's PID and the container id the name carries.
func shellInContainer(t *testing.T, slice, script string) (pid int64, containerID string) {
	t.Helper()
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	containerID = hex.EncodeToString(raw)
	podUID := "3f9d2c1e-7b4a-4e21-9c55-0a1b2c3d4e5f"
	pod := filepath.Join(slice, "kubepods-besteffort-pod"+strings.ReplaceAll(podUID, "-", "_")+".slice")
	dir := filepath.Join(pod, "cri-containerd-"+containerID+".scope")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() {
		for _, d := range []string{dir, pod} {
			_ = os.Remove(d)
		}
	})
	cg, err := os.Open(dir)
	require.NoError(t, err)
	defer cg.Close()

	// The shell should outlive its exec event by a second (the script's sleep): a
	// brand-new cgroup may be newer than the receiver's last walk of the hierarchy,
	// and then the process's /proc/PID/cgroup names its container.
	// An interactive shell (sh -i, its commands on stdin, as a reverse shell's or a
	// debug session's): the runtime pack alerts on it whatever its parent; an
	// application's own `sh -c` it leaves alone (rules/runtime.yaml, K8SR-0001).
	shell := exec.Command("/bin/sh", "-i")
	shell.Stdin = strings.NewReader(script + "\n")
	shell.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	require.NoError(t, shell.Run())
	return int64(shell.ProcessState.Pid()), containerID
}

// execRecordsOf describes the process.exec records of pid in the output, with
// their resources, to tell a missing event from a missing identity.
func execRecordsOf(path string, pid int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var found []string
	var unmarshaler plog.JSONUnmarshaler
	for _, line := range strings.Split(string(data), "\n") {
		logs, err := unmarshaler.UnmarshalLogs([]byte(line))
		if err != nil {
			continue
		}
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if p, ok := rl.Resource().Attributes().Get("process.pid"); ok && p.Int() == pid && lr.EventName() == "process.exec" {
						found = append(found, fmt.Sprintf("resource=%v attrs=%v", rl.Resource().Attributes().AsRaw(), lr.Attributes().AsRaw()))
					}
				}
			}
		}
	}
	return fmt.Sprint(found)
}
