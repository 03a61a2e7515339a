package probe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// anotherRoot starts a process in its own mount namespace whose root is a
// directory of the test's, standing for the host as a DaemonSet agent sees it
// (through /proc/1/root), and returns that directory and /proc/<pid>/root.
// The "host" has a tool behind absolute symlinks, as Debian's alternatives are:
// /usr/bin/k8ssec-tool -> /etc/alternatives/k8ssec-tool -> /usr/bin/k8ssec-tool.real.
func anotherRoot(t *testing.T) (dir, procRoot string) {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	testenv.Require(t, err == nil, "busybox (busybox-static) keeps a process in the other root")
	dir = t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "etc/alternatives"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	copyFile(t, busybox, filepath.Join(dir, "bin/busybox"))
	copyFile(t, "/bin/true", filepath.Join(dir, "usr/bin/k8ssec-tool.real"))
	require.NoError(t, os.Symlink("/usr/bin/k8ssec-tool.real", filepath.Join(dir, "etc/alternatives/k8ssec-tool")))
	require.NoError(t, os.Symlink("/etc/alternatives/k8ssec-tool", filepath.Join(dir, "usr/bin/k8ssec-tool")))
	cmd := exec.Command("/bin/busybox", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir, Cloneflags: syscall.CLONE_NEWNS}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return dir, "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/root"
}

// A policy path is resolved as the host resolves it, through the root the
// agent sees the host by: absolute symlinks there lead to the host's file, not
// to whatever the agent's own root has at that path.
func TestPolicyPathResolvedInTheHostsRoot(t *testing.T) {
	requireRoot(t)
	dir, root := anotherRoot(t)
	var want unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(dir, "usr/bin/k8ssec-tool.real"), &want))
	self, err := statFileID("/proc/self/exe")
	require.NoError(t, err)

	got, err := resolvePolicyPath(root, "/usr/bin/k8ssec-tool", self)
	require.NoError(t, err)
	assert.True(t, got.exists, "found on the host, through its absolute symlinks")
	assert.Equal(t, fileIDOfStat(&want), got.id)
	assert.Equal(t, "/usr/bin/k8ssec-tool.real", string(trimNUL(got.key[:])), "the path as the host names it")

	got, err = resolvePolicyPath(root, "/usr/bin/k8ssec-absent", self)
	require.NoError(t, err, "a path with no file on the host is kept")
	assert.False(t, got.exists)
	assert.Equal(t, "/usr/bin/k8ssec-absent", string(trimNUL(got.key[:])))

	_, err = resolvePolicyPath(root, "/usr/bin", self)
	assert.ErrorContains(t, err, "not a regular file")
}

// With the host seen through another root, the loaded policy kills the host's
// file by its identity, under any name, and reports the paths it did not find.
func TestPolicyKillsTheHostsFileSeenThroughItsRoot(t *testing.T) {
	requireRoot(t)
	dir, root := anotherRoot(t)
	saved := hostRootFn
	hostRootFn = func() string { return root }
	t.Cleanup(func() { hostRootFn = saved })
	alias := filepath.Join(t.TempDir(), "k8ssec-alias") // another name of the host's file, in the agent's root
	require.NoError(t, os.Link(filepath.Join(dir, "usr/bin/k8ssec-tool.real"), alias))

	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExit: true, SkipFork: true,
		KillPaths: []string{"/usr/bin/k8ssec-tool", "/usr/bin/k8ssec-absent"}})
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, []string{"/usr/bin/k8ssec-absent"}, p.PolicyPathsNotOnHost)

	err = exec.Command(alias).Run()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "the host's file under another name must be killed: %v", err)
	assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
	assert.NoError(t, exec.Command("/bin/true").Run(), "another file runs")
}
