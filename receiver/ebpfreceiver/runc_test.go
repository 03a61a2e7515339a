package ebpfreceiver

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runcBundle is an OCI bundle of Debian's static busybox whose process runs
// argv, made from `runc spec`; caps are added to the process's capability sets.
func runcBundle(t *testing.T, argv []string, caps ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"rootfs/bin", "rootfs/proc", "rootfs/dev", "rootfs/mnt", "rootfs/tmp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	copyFile(t, busybox(t), filepath.Join(dir, "rootfs/bin/busybox"))
	require.NoError(t, os.Link(filepath.Join(dir, "rootfs/bin/busybox"), filepath.Join(dir, "rootfs/bin/sh")))
	out, err := exec.Command("/usr/sbin/runc", "spec", "--bundle", dir).CombinedOutput()
	require.NoError(t, err, "runc spec: %s", out)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(b, &spec))
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = argv
	for _, set := range []string{"bounding", "effective", "permitted"} {
		c := proc["capabilities"].(map[string]any)
		for _, cp := range caps {
			c[set] = append(c[set].([]any), cp)
		}
	}
	b, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

// setCgroupsPath has runc put the bundle's container into this cgroup (below
// the unified hierarchy in a hybrid one), as containerd's CRI has it do.
func setCgroupsPath(t *testing.T, bundle, cgroupsPath string) {
	t.Helper()
	file := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(b, &spec))
	spec["linux"].(map[string]any)["cgroupsPath"] = cgroupsPath
	b, err = json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o644))
}

// runc's own setup of a container (Debian's runc 1.1.5, as a node's
// containerd runs it) makes dozens of mounts and a namespace change from its
// init stages: none may raise K8SR-0017 (nor anything else: its loopback's
// netlink socket is K8SR-0031's), while a mount made by the container's
// entrypoint after its exec still does. runc puts its init into a
// container-named cgroup, as the kubelet's containerd has it do.
func TestRuncRunRaisesNoMountAlert(t *testing.T) {
	requireRoot(t)
	needTools(t, "/usr/sbin/runc")
	const rule = "Mount or namespace change in a container"
	s := &attackSuite{root: makeCgroup(t), podUID: "1c2d3e4f-5061-4a72-8b93-a4b5c6d7e8f9"}
	t.Cleanup(func() { removeV1Cgroups(t, cgroupRel(t, s.root.path)) })
	// The bundles are made before the receiver starts: their busybox is then
	// the node's file (an image's), not drift.
	plainBundle := runcBundle(t, []string{"/bin/sh", "-c", "busybox sleep 1"})
	// CAP_SYS_ADMIN, as a privileged container has it: its entrypoint's mount succeeds.
	mounterBundle := runcBundle(t, []string{"/bin/sh", "-c", "busybox mount -t tmpfs none /mnt && busybox sleep 1"}, "CAP_SYS_ADMIN")
	alerts, kernel := startPipeline(t, s.root)
	state := t.TempDir()
	// runc runs outside the containers, as under containerd's shim: in a "host"
	// cgroup the receiver also watches, as the agent watches the whole node.
	host := filepath.Join(s.root.path, "system-containerd")
	require.NoError(t, os.Mkdir(host, 0o755))
	hostFd, err := os.Open(host)
	require.NoError(t, err)
	t.Cleanup(func() {
		hostFd.Close()
		require.Eventually(t, func() bool { return os.Remove(host) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	hostCg := &testCgroup{path: host, fd: hostFd}
	runcRun := func(name, bundle string) string {
		id := containerID(name)
		cg := s.containerCgroup(t, id)
		setCgroupsPath(t, bundle, "/"+cgroupRel(t, cg.path))
		cmd := hostCg.command("/usr/sbin/runc", "--root", state, "run", "--bundle", bundle, id[:12])
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "runc run %s: %s", name, out)
		return id
	}
	// Each container lives a second: runc removes its cgroup when it exits,
	// and the receiver names a container from its cgroup.
	plain := runcRun("runc run busybox", plainBundle)
	mounter := runcRun("runc run busybox that mounts", mounterBundle)

	// The entrypoint's mount comes after runc's setup: once its alert is in, so is the setup's.
	mountAlerts := func(id string) []map[string]any {
		var out []map[string]any
		for _, ld := range alerts.AllLogs() {
			for _, e := range events(ld) {
				if m := attrMap(e); m["container.id"] == id && m["security_rule.name"] == rule {
					out = append(out, m)
				}
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(mountAlerts(mounter)) > 0 }, 15*time.Second, 50*time.Millisecond,
		"the entrypoint's mount of /mnt raised %q", rule)
	time.Sleep(500 * time.Millisecond) // the last batch

	// What the kernel reported for runc's setup: the record of this test.
	setup := map[string]int{}
	for _, ld := range kernel.AllLogs() {
		for _, e := range events(ld) {
			m := attrMap(e)
			if m["container.id"] != plain || !strings.HasPrefix(e.EventName(), "namespace.") {
				continue
			}
			if v, _ := m["k8ssec.syscall.result"].(int64); v == 0 {
				setup[e.EventName()]++
			}
			t.Logf("%s exe=%v parent=%v comm=%v pid=%v result=%v source=%v target=%v types=%v", e.EventName(),
				m[attrExecutablePath], m[attrParentExecutablePath], m[attrComm], m[attrPid], m["k8ssec.syscall.result"],
				m["k8ssec.mount.source"], m["k8ssec.mount.target"], m["k8ssec.namespace.types"])
			assert.NotEmpty(t, m[attrExecutablePath], "runc's setup carries its executable (its init stages are CLONE_PARENT children)")
		}
	}
	t.Logf("runc's setup of a plain container: %v", setup)
	got := alertsByContainer(alerts)
	t.Logf("alerts: plain %v, mounter %v", got[plain], got[mounter])
	assert.Empty(t, got[plain], "a plain runc run of busybox raised nothing")
	assert.Greater(t, setup["namespace.mount"], 10, "runc's mounts were seen")
	assert.Positive(t, setup["namespace.unshare"], "runc's namespaces were seen")
	assert.Empty(t, mountAlerts(plain), "a plain runc run raised %q", rule)
	for _, a := range mountAlerts(mounter) {
		assert.Equal(t, "/bin/sh", a[attrExecutablePath], "only the entrypoint's own mount alerts: %v", a)
	}
}

// cgroupRel is path relative to its cgroup v2 hierarchy's root.
func cgroupRel(t *testing.T, path string) string {
	t.Helper()
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	t.Fatalf("%s is not below a cgroup hierarchy", path)
	return ""
}

// removeV1Cgroups removes the directories runc made for rel in a hybrid
// hierarchy's v1 controllers (it removes only the container's own).
func removeV1Cgroups(t *testing.T, rel string) {
	t.Helper()
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		top := filepath.Join("/sys/fs/cgroup", c.Name(), rel)
		if c.Name() == "unified" || rel == "" || rel == "." {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil {
				t.Errorf("removing runc's cgroup: %v", err)
			}
		}
	}
}
