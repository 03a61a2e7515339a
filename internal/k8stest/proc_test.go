package k8stest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The whole process group goes at cleanup, including children that ignore SIGTERM.
func TestStopProcessGroup(t *testing.T) {
	dir := t.TempDir()
	var pid int
	t.Run("run", func(t *testing.T) {
		// The grandchild ignores SIGTERM, so only the SIGKILL after stopGrace ends it.
		p := StartProcess(t, dir, "sh", "/bin/sh", "-c", `(trap "" TERM; exec sleep 300) & echo $! > `+filepath.Join(dir, "child.pid")+`; wait`)
		pid = p.cmd.Process.Pid
		for range 50 {
			if b, _ := os.ReadFile(filepath.Join(dir, "child.pid")); len(b) > 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("child never started")
	})
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{pid, child} {
		// SIGKILL is sent by now, but the kernel may take a moment to finish the process.
		for i := 0; alive(p); i++ {
			if i == 100 {
				t.Errorf("pid %d survived cleanup", p)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// A flag in ExtraArgs replaces the default of the same name: list flags such as
// --authorization-mode would otherwise add up ("RBAC,Node,RBAC" is refused).
func TestExtraArgsReplaceDefaults(t *testing.T) {
	got := mergeFlags(
		[]string{"--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount", "--secure-port=1"},
		[]string{"--authorization-mode=Node,RBAC", "--disable-admission-plugins=", "--v=2"})
	want := []string{"--authorization-mode=Node,RBAC", "--disable-admission-plugins=", "--secure-port=1", "--v=2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("mergeFlags = %q, want %q", got, want)
	}
}
