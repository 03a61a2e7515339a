package probe

import (
	"bytes"
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

// The kernel TestDenyExecUnderQemu boots: Debian's newest 6.12, with BPF LSM on
// by default (hack/fetch-test-kernel.sh links it there).
func testKernel(t *testing.T) string {
	if k := os.Getenv("K8SSEC_TEST_KERNEL"); k != "" {
		return k
	}
	cache := os.Getenv("OTELCOL_K8SSEC_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "otelcol-k8ssec")
	}
	return filepath.Join(cache, "kernels", "vmlinuz-6.12")
}

// TestDenyExecUnderQemu boots a kernel that runs BPF LSM under qemu, with
// this package's tests (built static) in a busybox initramfs, and runs
// TestDenyExecInVM there: this machine's kernel refuses BPF LSM programs.
func TestDenyExecUnderQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	kernel := testKernel(t)
	_, err := os.Stat(kernel)
	require.NoError(t, err, "the test kernel: run hack/fetch-test-kernel.sh")
	qemu, err := exec.LookPath("qemu-system-x86_64")
	require.NoError(t, err, "apt-get install qemu-system-x86")
	busybox, err := exec.LookPath("busybox")
	require.NoError(t, err, "apt-get install busybox-static")

	root := t.TempDir()
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	copyFile(t, busybox, filepath.Join(root, "bin", "busybox"))
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(root, "probe.test"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the tests static:\n%s", out)
	require.NoError(t, os.WriteFile(filepath.Join(root, "init"), []byte(vmInit), 0o755))

	initrd := filepath.Join(t.TempDir(), "initramfs.cpio")
	pack := exec.Command("sh", "-c", `find . | "$0" cpio -o -H newc > "$1"`, busybox, initrd)
	pack.Dir = root
	out, err = pack.CombinedOutput()
	require.NoError(t, err, "packing the initramfs:\n%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vm := exec.CommandContext(ctx, qemu, "-m", "1024", "-smp", "2", "-cpu", "max", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	var console bytes.Buffer
	vm.Stdout, vm.Stderr = &console, &console
	_ = vm.Run() // qemu's status says nothing of the tests: the console does
	got := console.String()
	require.Contains(t, got, "K8SSEC-VM-DONE", "the VM did not finish:\n%s", got)
	assert.Contains(t, got, "--- PASS: TestDenyExecInVM", "in the VM:\n%s", got)
	assert.NotContains(t, got, "FAIL", "in the VM:\n%s", got)
}

// vmInit is the VM's /init: mount what the probe needs, run the test, stop.
const vmInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
exec >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tracefs tracefs /sys/kernel/tracing
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
ip link set lo up
echo "active LSMs: $(cat /sys/kernel/security/lsm)"
K8SSEC_IN_VM=1 /probe.test -test.run '^TestDenyExecInVM$' -test.v
echo K8SSEC-VM-DONE
poweroff -f
`

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// TestDenyExecInVM runs inside the VM TestDenyExecUnderQemu boots: an exec
// of a denied executable fails with EPERM, also through a hard link or a
// symlink to it, and is reported; a copy of it (another file) runs; with
// ContainerPaths, the file at a denied path under another root (a chroot, as
// a container's) is denied too; the agent's own executable cannot be denied.
func TestDenyExecInVM(t *testing.T) {
	if os.Getenv("K8SSEC_IN_VM") == "" {
		t.Skip("runs in the VM that TestDenyExecUnderQemu boots")
	}
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
