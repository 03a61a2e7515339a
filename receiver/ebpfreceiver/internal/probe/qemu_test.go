package probe

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The qemu harness: this package's tests, built static, in a busybox
// initramfs, booted under another kernel (../shared/KERNELS.md), for what
// this machine's kernel does not run (BPF LSM, fentry, kprobes). Tests that
// run in the VM start with requireVM.

// inVMEnv is set in the VM's environment.
const inVMEnv = "K8SSEC_IN_VM"

// requireVM skips a test outside the VM that bootedBy boots.
func requireVM(t testing.TB, bootedBy string) {
	t.Helper()
	if os.Getenv(inVMEnv) == "" {
		t.Skip("runs in the VM that " + bootedBy + " boots")
	}
}

// testKernel is Debian's kernel of series ("6.12", "6.1"), as
// hack/fetch-test-kernel.sh caches it; K8SSEC_TEST_KERNEL_<series> (dots
// removed: K8SSEC_TEST_KERNEL_612) overrides it, K8SSEC_TEST_KERNEL the 6.12.
func testKernel(t testing.TB, series string) string {
	t.Helper()
	if k := os.Getenv("K8SSEC_TEST_KERNEL_" + regexp.MustCompile(`\D`).ReplaceAllString(series, "")); k != "" {
		return k
	}
	if k := os.Getenv("K8SSEC_TEST_KERNEL"); k != "" && series == "6.12" {
		return k
	}
	cache := os.Getenv("OTELCOL_K8SSEC_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "otelcol-k8ssec")
	}
	kernel := filepath.Join(cache, "kernels", "vmlinuz-"+series)
	_, err := os.Stat(kernel)
	require.NoError(t, err, "the test kernel: run hack/fetch-test-kernel.sh %s", series)
	return kernel
}

// qemuVM is an initramfs with the tests in it, to boot under any kernel.
type qemuVM struct {
	root    string // the initramfs's tree
	qemu    string
	busybox string
	// cpus is the VM's CPU count; 0: one. With two the emulator (TCG, no
	// KVM here) sometimes leaves a stale int3 of the kernel's live code
	// patching (static keys) where the other CPU runs it: an oops, at boot or
	// as tracepoints attach, that has nothing to do with the test.
	cpus int
}

// newQemuVM builds the tests static into a busybox tree. Skipped with -short.
func newQemuVM(t testing.TB) *qemuVM {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	require.NoError(t, err, "apt-get install qemu-system-x86")
	busybox, err := exec.LookPath("busybox")
	require.NoError(t, err, "apt-get install busybox-static")
	vm := &qemuVM{root: t.TempDir(), qemu: qemu, busybox: busybox}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp"} {
		require.NoError(t, os.Mkdir(filepath.Join(vm.root, d), 0o755))
	}
	copyFile(t, busybox, filepath.Join(vm.root, "bin", "busybox"))
	build := exec.Command("go", "test", "-c", "-o", filepath.Join(vm.root, "probe.test"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the tests static:\n%s", out)
	return vm
}

// add puts a copy of from at path (absolute, in the VM) with mode (set-uid
// bits included: the cpio archive keeps them, and root's ownership).
func (vm *qemuVM) add(t testing.TB, from, path string, mode os.FileMode) {
	t.Helper()
	dst := filepath.Join(vm.root, path)
	copyFile(t, from, dst)
	require.NoError(t, os.Chmod(dst, mode))
}

// addProgram builds a one-file Go program (its source; the standard library
// only) static for goarch and puts it at path in the VM.
func (vm *qemuVM) addProgram(t testing.TB, source, path, goarch string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644))
	build := exec.Command("go", "build", "-o", filepath.Join(vm.root, path), "main.go")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+goarch, "GOFLAGS=", "GO111MODULE=off")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building %s for %s:\n%s", path, goarch, out)
}

// run boots kernel with the initramfs, runs the tests that run matches
// (-test.run) with -test.v, and fails t unless each of them passed and none
// failed. It returns the console.
func (vm *qemuVM) run(t testing.TB, kernel, run string, args ...string) string {
	t.Helper()
	script := fmt.Sprintf(vmInit, inVMEnv, kernel, run, shellWords(args))
	require.NoError(t, os.WriteFile(filepath.Join(vm.root, "init"), []byte(script), 0o755))
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio")
	pack := exec.Command("sh", "-c", `find . | "$0" cpio -o -H newc > "$1"`, vm.busybox, initrd)
	pack.Dir = vm.root
	out, err := pack.CombinedOutput()
	require.NoError(t, err, "packing the initramfs:\n%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cpus := "1"
	if vm.cpus > 0 {
		cpus = fmt.Sprint(vm.cpus)
	}
	qemu := exec.CommandContext(ctx, vm.qemu, "-m", "1024", "-smp", cpus, "-cpu", "max", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	var console bytes.Buffer
	qemu.Stdout, qemu.Stderr = &console, &console
	_ = qemu.Run() // qemu's status says nothing of the tests: the console does
	got := console.String()
	t.Logf("%s: console:\n%s", filepath.Base(kernel), got)
	require.Contains(t, got, "K8SSEC-VM-DONE", "the VM did not finish")
	for _, name := range regexp.MustCompile(`[A-Za-z0-9_]+`).FindAllString(run, -1) {
		if len(name) > 4 && name[:4] == "Test" {
			assert.Contains(t, got, "--- PASS: "+name, "in the VM under %s", kernel)
		}
	}
	assert.NotContains(t, got, "FAIL", "in the VM under %s", kernel)
	return got
}

func shellWords(args []string) string {
	var b bytes.Buffer
	for _, a := range args {
		fmt.Fprintf(&b, " '%s'", a)
	}
	return b.String()
}

// vmInit is the VM's /init: mount what the probe needs, run the tests, stop.
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
echo "kernel $(uname -r), active LSMs: $(cat /sys/kernel/security/lsm)"
%s=%s /probe.test -test.run '%s' -test.v%s
echo K8SSEC-VM-DONE
poweroff -f
`

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}
