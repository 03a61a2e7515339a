package ebpfreceiver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadatatest"
)

// TestEnforcementKillsAtExec runs, with enforcement on and cgroup_path set to a
// test cgroup: a listed binary in the cgroup (killed by SIGKILL at exec, its
// exec record saying so, the kill counted once), a binary not listed in the
// same cgroup (runs), and the listed binary outside the cgroup (runs). Once
// with kill_paths, once with kill_comms.
func TestEnforcementKillsAtExec(t *testing.T) {
	requireRoot(t)
	for _, byComm := range []bool{false, true} {
		name := "kill_paths"
		if byComm {
			name = "kill_comms"
		}
		t.Run(name, func(t *testing.T) {
			cg := makeCgroup(t)
			dir := t.TempDir()
			listed := filepath.Join(dir, "k8ssec-kill")
			other := filepath.Join(dir, "k8ssec-spare")
			copyFile(t, "/bin/sleep", listed)
			copyFile(t, "/bin/sleep", other)
			wantRule := listed
			sink := new(consumertest.LogsSink)
			tt := newTelemetry(t)
			rcv := startReceiver(t, tt, sink, func(c *Config) {
				c.Events = []string{eventProcessExec, eventProcessExit}
				c.CgroupPath = cg.path
				if byComm {
					c.Enforcement.KillComms = []string{"k8ssec-kill"}
				} else {
					c.Enforcement.KillPaths = []string{listed}
				}
			})
			if byComm {
				wantRule = "k8ssec-kill"
			}
			stopped := false
			defer func() {
				if !stopped {
					require.NoError(t, rcv.Shutdown(context.Background()))
				}
			}()

			// Listed, in the cgroup: killed at exec, before sleeping.
			killed := helperCommand(cg, "exec", listed, "5")
			start := time.Now()
			require.NoError(t, killed.Start())
			err := killed.Wait()
			elapsed := time.Since(start)
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "the listed binary must not exit normally: %v", err)
			ws := ee.Sys().(syscall.WaitStatus)
			require.True(t, ws.Signaled(), "exit status %v", ws)
			assert.Equal(t, syscall.SIGKILL, ws.Signal())
			assert.Less(t, elapsed, time.Second)

			lr := waitForExe(t, sink, "process.exec", killed.Process.Pid, listed)
			a := attrMap(lr)
			assert.Equal(t, "sigkill", a["k8ssec.enforcement.action"])
			assert.Equal(t, wantRule, a["k8ssec.enforcement.rule"])
			assert.Equal(t, []any{listed, "5"}, a["process.command_args"])
			assert.Equal(t, "k8ssec-kill", a["k8ssec.process.comm"])
			assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
			exit := waitFor(t, sink, "process.exit", killed.Process.Pid)
			assert.Equal(t, int64(9), attrMap(exit)["k8ssec.process.exit.signal"])

			// Not listed, same cgroup: runs to its end.
			spare := helperCommand(cg, "exec", other, "0.05")
			require.NoError(t, spare.Run())
			lr = waitForExe(t, sink, "process.exec", spare.Process.Pid, other)
			assert.NotContains(t, attrMap(lr), "k8ssec.enforcement.action")
			assert.NotContains(t, attrMap(lr), "k8ssec.enforcement.rule")
			assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())

			// Listed, outside the cgroup: not enforced (nor reported).
			outside := exec.Command(listed, "0.05")
			require.NoError(t, outside.Run())
			assert.Equal(t, 0, outside.ProcessState.ExitCode())
			assert.Empty(t, find(sink, "process.exec", outside.Process.Pid))

			require.Eventually(t, func() bool { return killsValue(t, tt) == 1 }, 5*time.Second, 20*time.Millisecond,
				"the kill counted by the periodic poll")
			require.NoError(t, rcv.Shutdown(context.Background()))
			stopped = true
			assert.Equal(t, int64(1), killsValue(t, tt), "exactly one kill")
		})
	}
}

// waitForExe waits for the one record named event for pid whose executable is exe.
func waitForExe(t *testing.T, sink *consumertest.LogsSink, name string, pid int, exe string) event {
	t.Helper()
	var got []event
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, lr := range find(sink, name, pid) {
			if v, ok := lr.attr(attrExecutablePath); ok && v.Str() == exe {
				got = append(got, lr)
			}
		}
		return len(got) > 0
	}, 10*time.Second, 10*time.Millisecond, "no %s record of %s for pid %d", name, exe, pid)
	require.Len(t, got, 1)
	return got[0]
}

func killsValue(t *testing.T, tt *componenttest.Telemetry) int64 {
	t.Helper()
	m, err := tt.GetMetric("otelcol_receiver_ebpf_enforcement_kills")
	if err != nil {
		return 0 // never recorded
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "an int sum")
	var total int64
	for _, dp := range sum.DataPoints {
		total += dp.Value
	}
	return total
}

// TestDenyWithoutBPFLSMRefusesToStart: on a kernel without BPF LSM (this
// one), a receiver asked to deny execs does not start, and says why.
func TestDenyWithoutBPFLSMRefusesToStart(t *testing.T) {
	requireRoot(t)
	if b, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil && strings.Contains(string(b), "bpf") {
		t.Skip("this kernel runs BPF LSM: the probe's qemu test covers denial")
	}
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Enforcement.DenyExecPaths = []string{"/usr/bin/true"}
	require.NoError(t, cfg.Validate())
	rcv, err := f.CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = rcv.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs BPF LSM")
	require.NoError(t, rcv.Shutdown(context.Background()))
}

// runKilled runs cmd and reports whether it died of SIGKILL (else it must
// have exited, with any status).
func runKilled(t *testing.T, cmd *exec.Cmd) bool {
	t.Helper()
	require.NoError(t, cmd.Start())
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		require.NoError(t, err)
		return false
	}
	ws := ee.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestKillPathsCannotBeRenamedAround: in a container-named cgroup, every other
// name of a kill-listed binary is killed (doubled slashes, "./", a relative
// path, a symlink, a hard link, the file replaced at its path), a copy is
// not, and without enforcement nothing is.
func TestKillPathsCannotBeRenamedAround(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	listed := filepath.Join(dir, "k8ssec-victim")
	copyFile(t, "/bin/sleep", listed)
	require.NoError(t, os.Symlink(listed, filepath.Join(dir, "link")))
	other := t.TempDir()
	require.NoError(t, os.Link(listed, filepath.Join(other, "hard")))
	copyFile(t, "/bin/sleep", filepath.Join(other, "copy"))

	cg := makeContainerCgroup(t, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", strings.Repeat("c", 64))
	run := func(dirOfExec, path string) *exec.Cmd {
		cmd := helperCommand(cg, "exec", path, "0.05")
		cmd.Dir = dirOfExec
		return cmd
	}
	// exe: the executable as the kernel resolves it, whatever the name.
	names := []struct{ name, dir, path, exe string }{
		{"as listed", "/", listed, listed},
		{"doubled slashes", "/", strings.ReplaceAll(listed, "/", "//"), listed},
		{"dot segments", "/", filepath.Dir(listed) + "/./../" + filepath.Base(filepath.Dir(listed)) + "/k8ssec-victim", listed},
		{"relative", dir, "./k8ssec-victim", listed},
		{"symlink", "/", filepath.Join(dir, "link"), listed},
		{"hard link", "/", filepath.Join(other, "hard"), filepath.Join(other, "hard")},
	}

	t.Run("monitor mode kills nothing", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
			c.Events = []string{eventProcessExec}
			c.CgroupPath = cg.path
		})
		defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
		for _, n := range names {
			assert.False(t, runKilled(t, run(n.dir, n.path)), "%s: killed without enforcement", n.name)
		}
	})

	t.Run("enforcing", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
			c.Events = []string{eventProcessExec}
			c.CgroupPath = cg.path
			c.Enforcement.KillPaths = []string{listed}
		})
		defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
		for _, n := range names {
			cmd := run(n.dir, n.path)
			assert.True(t, runKilled(t, cmd), "%s (%s) must be killed", n.name, n.path)
			a := attrMap(waitForExe(t, sink, "process.exec", cmd.Process.Pid, n.exe))
			assert.Equal(t, "sigkill", a["k8ssec.enforcement.action"], n.name)
			assert.Equal(t, listed, a["k8ssec.enforcement.rule"], n.name)
			assert.Equal(t, strings.Repeat("c", 64), a["container.id"], n.name)
		}
		cp := run("/", filepath.Join(other, "copy"))
		assert.False(t, runKilled(t, cp), "a copy is another file")
		assert.NotContains(t, attrMap(waitForExe(t, sink, "process.exec", cp.Process.Pid, filepath.Join(other, "copy"))), "k8ssec.enforcement.action")

		// The file replaced at the listed path (a package upgrade): a new inode, the same path.
		require.NoError(t, os.Remove(listed))
		copyFile(t, "/bin/sleep", listed)
		assert.True(t, runKilled(t, run("/", listed)), "a file replaced at a listed path")
	})
}

// TestKillContainerPaths: a kill path names a file under a process's own root
// (a chroot here, as a container's root) only with container_paths; a host
// process is judged by the host's files.
func TestKillContainerPaths(t *testing.T) {
	requireRoot(t)
	busybox, err := exec.LookPath("busybox")
	require.NoError(t, err, "apt-get install busybox-static (hack/install-deps.sh test)")
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	copyFile(t, busybox, filepath.Join(root, "usr/bin/k8ssec-inside")) // absent from the host
	cg := makeCgroup(t)
	for _, containerPaths := range []bool{false, true} {
		t.Run(map[bool]string{false: "host paths only", true: "container_paths"}[containerPaths], func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
				c.Events = []string{eventProcessExec}
				c.CgroupPath = cg.path
				c.Enforcement.KillPaths = []string{"/usr/bin/k8ssec-inside"}
				c.Enforcement.ContainerPaths = containerPaths
			})
			defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
			cmd := helperCommand(cg, "chroot-exec", root, "/usr/bin/k8ssec-inside", "true")
			assert.Equal(t, containerPaths, runKilled(t, cmd))
			a := attrMap(waitForExe(t, sink, "process.exec", cmd.Process.Pid, "/usr/bin/k8ssec-inside"))
			if containerPaths {
				assert.Equal(t, "/usr/bin/k8ssec-inside", a["k8ssec.enforcement.rule"])
			} else {
				assert.NotContains(t, a, "k8ssec.enforcement.action")
			}
		})
	}
}

// TestEnforcementNeverStopsTheAgent: a policy naming the agent's own
// executable is refused at start, by any name.
func TestEnforcementNeverStopsTheAgent(t *testing.T) {
	requireRoot(t)
	self, err := os.Executable()
	require.NoError(t, err)
	link := filepath.Join(t.TempDir(), "agent")
	require.NoError(t, os.Symlink(self, link))
	for _, path := range []string{self, link} {
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Enforcement.KillPaths = []string{path}
		require.NoError(t, cfg.Validate())
		rcv, err := f.CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), cfg, consumertest.NewNop())
		require.NoError(t, err)
		err = rcv.Start(context.Background(), componenttest.NewNopHost())
		require.Error(t, err, path)
		assert.Contains(t, err.Error(), "this agent's own executable")
		require.NoError(t, rcv.Shutdown(context.Background()))
	}
}
