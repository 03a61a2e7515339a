package probe

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestDenyNeedsBPFLSM: on a kernel that refuses BPF LSM programs (this one),
// asking for deny_exec_paths fails Load with what to do, instead of running
// without the enforcement asked for.
func TestDenyNeedsBPFLSM(t *testing.T) {
	requireRoot(t)
	if b, err := os.ReadFile(lsmList); err == nil && strings.Contains(string(b), "bpf") {
		t.Skip("this kernel runs BPF LSM: TestDenyExecUnderQemu covers it")
	}
	_, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		DenyExecPaths: []string{"/bin/true"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs BPF LSM")
	assert.Contains(t, err.Error(), "lsm=")
	assert.Contains(t, err.Error(), "kill_paths")
}

func TestFileIDOf(t *testing.T) {
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/bin/true", &st))
	id, err := FileIDOf("/bin/true")
	require.NoError(t, err)
	assert.Equal(t, st.Ino, id.Ino)
	assert.Equal(t, unix.Major(st.Dev)<<20|unix.Minor(st.Dev), id.Dev)
	_, err = FileIDOf("bin/true")
	assert.ErrorContains(t, err, "absolute")
	_, err = FileIDOf("/nonexistent/x")
	assert.ErrorContains(t, err, "must exist")
	_, err = FileIDOf("/tmp")
	assert.ErrorContains(t, err, "not a regular file")
}

// TestDenyExecUnderQemu boots a kernel that runs BPF LSM (Debian's 6.12)
// under qemu and runs TestDenyExecInVM there: this machine's kernel refuses
// BPF LSM programs.
func TestDenyExecUnderQemu(t *testing.T) {
	vm := newQemuVM(t)
	vm.run(t, testKernel(t, "6.12"), "TestDenyExecInVM")
}

// TestDenyExecInVM runs inside the VM TestDenyExecUnderQemu boots: an exec
// of a denied executable fails with EPERM, also through a hard link or a
// symlink to it, and is reported; a copy of it (another file) runs; with
// ContainerPaths, the file at a denied path under another root (a chroot, as
// a container's) is denied too; the agent's own executable cannot be denied.
func TestDenyExecInVM(t *testing.T) {
	requireVM(t, "TestDenyExecUnderQemu")
	self, err := os.Executable()
	require.NoError(t, err)
	denied, alias, link, other := "/tmp/denied", "/tmp/alias", "/tmp/link", "/tmp/other"
	copyFile(t, self, denied)
	require.NoError(t, os.Link(denied, alias))
	require.NoError(t, os.Symlink(denied, link))
	copyFile(t, self, other)
	root := "/tmp/container"
	require.NoError(t, os.MkdirAll(root+"/usr/bin", 0o755))
	copyFile(t, self, root+"/usr/bin/k8ssec-inside") // no such file on the "host"

	_, err = Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		DenyExecPaths: []string{self}})
	require.ErrorContains(t, err, "this agent's own executable")

	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		DenyExecPaths: []string{denied, "/usr/bin/k8ssec-inside"}, ContainerPaths: true})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	run := func(path string) error { return exec.Command(path, "-test.run", "^$").Run() }
	assert.True(t, errors.Is(run(denied), unix.EPERM), "the denied executable")
	assert.True(t, errors.Is(run(alias), unix.EPERM), "a hard link to it")
	assert.True(t, errors.Is(run("/tmp//./denied"), unix.EPERM), "another spelling")
	assert.True(t, errors.Is(run(link), unix.EPERM), "a symlink to it")
	assert.NoError(t, run(other), "a copy is another file")
	inside := exec.Command("/usr/bin/k8ssec-inside", "-test.run", "^$")
	inside.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	assert.True(t, errors.Is(inside.Run(), unix.EPERM), "a container's file at a denied path")

	for _, want := range []struct {
		filename, exe string
		byFile        bool
	}{{denied, denied, true}, {alias, alias, true}, {"/tmp//./denied", denied, true}, {link, denied, true},
		{"/usr/bin/k8ssec-inside", "/usr/bin/k8ssec-inside", false}} {
		ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec })
		assert.Equal(t, want.filename, string(ev.Filename))
		assert.Equal(t, want.exe, string(ev.Exe), "the file refused, as the kernel resolved it")
		assert.NotZero(t, ev.Flags&FlagDenied)
		assert.Equal(t, want.byFile, ev.Flags&FlagByFile != 0, "%s: matched by inode", want.filename)
		assert.Equal(t, "probe.test", string(ev.CommBytes()), "the caller: the exec never happened")
		if want.byFile {
			assert.Equal(t, denied, p.PolicyEntry(&ev))
		}
	}
	n, err := p.DenyCount()
	require.NoError(t, err)
	assert.Equal(t, uint64(5), n)
}
