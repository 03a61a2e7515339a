package podidentity

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

const (
	cid  = "4e1b0a0d8a5cbe6e21b6a9d5e1f0e3c2b7a4d9c8f1e2d3c4b5a69788796a5b4c"
	cid2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cid3 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	uid  = "6b1f8c2e-3d4a-4b5c-9e6f-7a8b9c0d1e2f"
	uidU = "6b1f8c2e_3d4a_4b5c_9e6f_7a8b9c0d1e2f"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		want       PathInfo
	}{
		// containerd
		{"containerd systemd v2 burstable",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		{"containerd systemd v2 besteffort",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		{"containerd systemd guaranteed",
			"/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		{"containerd cgroupfs v1/v2",
			"/kubepods/burstable/pod" + uid + "/" + cid,
			PathInfo{ContainerID: cid, PodUID: uid}},
		{"containerd cgroupfs guaranteed",
			"/kubepods/pod" + uid + "/" + cid,
			PathInfo{ContainerID: cid, PodUID: uid}},
		{"containerd runc colon form (v1 systemd)",
			"/system.slice/containerd.service/kubepods-burstable-pod" + uidU + ".slice:cri-containerd:" + cid,
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		{"containerd sub-cgroup inside the container",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope/init.scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		{"kind node (nested kubelet)",
			"/system.slice/docker-" + cid2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeContainerd, PodUID: uid}},
		// CRI-O
		{"crio systemd v2",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeCRIO, PodUID: uid}},
		{"crio conmon: pod, no container",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope",
			PathInfo{PodUID: uid}},
		{"crio systemd with container sub-cgroup (cgroup v2, systemd in container)",
			"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-" + cid + ".scope/container",
			PathInfo{ContainerID: cid, Runtime: RuntimeCRIO, PodUID: uid}},
		{"crio cgroupfs",
			"/kubepods/besteffort/pod" + uid + "/crio-" + cid,
			PathInfo{ContainerID: cid, Runtime: RuntimeCRIO, PodUID: uid}},
		// Docker (dockershim / cri-dockerd and plain docker)
		{"cri-dockerd systemd",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/docker-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeDocker, PodUID: uid}},
		{"cri-dockerd cgroupfs", "/kubepods/besteffort/pod" + uid + "/" + cid,
			PathInfo{ContainerID: cid, PodUID: uid}},
		{"docker systemd", "/system.slice/docker-" + cid + ".scope",
			PathInfo{ContainerID: cid, Runtime: RuntimeDocker}},
		{"docker cgroupfs", "/docker/" + cid,
			PathInfo{ContainerID: cid, Runtime: RuntimeDocker}},
		{"docker in docker", "/docker/" + cid2 + "/docker/" + cid,
			PathInfo{ContainerID: cid, Runtime: RuntimeDocker}},
		{"podman", "/machine.slice/libpod-" + cid + ".scope/container",
			PathInfo{ContainerID: cid, Runtime: RuntimePodman}},
		// pod-level cgroups and QoS slices
		{"pod slice (pause process accounted here on some setups)",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice",
			PathInfo{PodUID: uid}},
		{"qos slice", "/kubepods.slice/kubepods-burstable.slice", PathInfo{}},
		{"kubepods cgroupfs root", "/kubepods", PathInfo{}},
		// host
		{"root", "/", PathInfo{Host: true}},
		{"empty", "", PathInfo{Host: true}},
		{"sshd", "/system.slice/ssh.service", PathInfo{Host: true}},
		{"containerd daemon", "/system.slice/containerd.service", PathInfo{Host: true}},
		{"kubelet", "/system.slice/kubelet.service", PathInfo{Host: true}},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", PathInfo{Host: true}},
		{"this machine's v1 memory path", "/process_api/051dfc75e983434e8a4318ccb8ec6460", PathInfo{Host: true}},
		// garbage
		{"short hex", "/kubepods/burstable/pod" + uid + "/abc123", PathInfo{PodUID: uid}},
		{"uppercase hex", "/docker/" + "4E1B0A0D8A5CBE6E21B6A9D5E1F0E3C2B7A4D9C8F1E2D3C4B5A69788796A5B4C", PathInfo{Host: true}},
		{"65 hex", "/docker/" + cid + "0", PathInfo{Host: true}},
		{"bare 64hex not under pod or docker", "/random/" + cid, PathInfo{Host: true}},
		{"bad scope prefix", "/system.slice/foo-" + cid + ".scope", PathInfo{Host: true}},
		{"scope without id", "/system.slice/docker-.scope", PathInfo{Host: true}},
		{"bad uid in slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podnotauid.slice", PathInfo{}},
		{"pod dir outside kubepods", "/foo/pod" + uid + "/x", PathInfo{Host: true}},
		{"colon junk", "/a:b:c", PathInfo{Host: true}},
		{"slashes", "///docker//" + cid + "//", PathInfo{ContainerID: cid, Runtime: RuntimeDocker}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ParsePath(tc.path))
		})
	}
}

func TestFindCgroup2Mount(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "mountinfo")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	mp, root, err := FindCgroup2Mount(write(hybrid))
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup/unified", mp)
	assert.Equal(t, "/", root)

	unified := `25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
900 1 0:22 /kubepods.slice /host/cg\040x rw - cgroup2 cgroup2 rw
`
	mp, root, err = FindCgroup2Mount(write(unified))
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup", mp)
	assert.Equal(t, "/", root)

	other := "900 1 0:22 /kubepods.slice /host/cg\\040x rw - cgroup2 cgroup2 rw\n"
	mp, root, err = FindCgroup2Mount(write(other))
	require.NoError(t, err)
	assert.Equal(t, "/host/cg x", mp)
	assert.Equal(t, "/kubepods.slice", root)

	_, _, err = FindCgroup2Mount(write("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"))
	require.ErrorContains(t, err, "no cgroup2 mount")
}

func TestInfoFromPIDFile(t *testing.T) {
	proc := t.TempDir()
	put := func(pid, content string) {
		require.NoError(t, os.MkdirAll(filepath.Join(proc, pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(proc, pid, "cgroup"), []byte(content), 0o600))
	}
	// cgroup v1 node (hybrid): the v2 line says nothing, v1 lines carry the pod.
	put("10", "12:memory:/kubepods/burstable/pod"+uid+"/"+cid+"\n"+
		"1:name=systemd:/kubepods/burstable/pod"+uid+"/"+cid+"\n0::/\n")
	info, path, err := InfoFromPID(proc, 10)
	require.NoError(t, err)
	assert.Equal(t, PathInfo{ContainerID: cid, PodUID: uid}, info)
	assert.Equal(t, "/kubepods/burstable/pod"+uid+"/"+cid, path)
	// cgroup v2 only.
	put("11", "0::/kubepods.slice/kubepods-pod"+uidU+".slice/crio-"+cid+".scope\n")
	info, _, err = InfoFromPID(proc, 11)
	require.NoError(t, err)
	assert.Equal(t, PathInfo{ContainerID: cid, Runtime: RuntimeCRIO, PodUID: uid}, info)
	// host.
	put("12", "4:memory:/process_api/abc\n0::/system.slice/ssh.service\n")
	info, path, err = InfoFromPID(proc, 12)
	require.NoError(t, err)
	assert.Equal(t, PathInfo{Host: true}, info)
	assert.Equal(t, "/system.slice/ssh.service", path)
	_, _, err = InfoFromPID(proc, 13)
	require.Error(t, err)
}

func TestSnapshotBoundsLabels(t *testing.T) {
	labels := map[string]string{}
	for i := range 40 {
		labels[fmt.Sprintf("k%02d", i)] = "v"
	}
	idx := newPodIndex(32)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", UID: uid, Labels: labels}}
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", ContainerID: "cri-o://" + cid2}}
	pod.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: "debug", ContainerID: "docker://" + cid}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + strings.Repeat("c", 64),
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "containerd://" + strings.Repeat("d", 64)}}}}
	obj, err := trimPod(pod)
	require.NoError(t, err)
	idx.upsert(obj.(*corev1.Pod))
	p := idx.byPodUID(uid)
	require.NotNil(t, p)
	assert.Len(t, p.Labels, 32)
	assert.Len(t, p.labelKeys, 32)
	assert.Equal(t, "k8s.pod.label.k00", p.labelKeys[0].attr)
	assert.Equal(t, "init", idx.byContainerID(cid2).ContainerName)
	assert.Equal(t, RuntimeCRIO, idx.byContainerID(cid2).runtime)
	assert.Equal(t, "debug", idx.byContainerID(cid).ContainerName)
	assert.Equal(t, RuntimeDocker, idx.byContainerID(cid).runtime)
	assert.Equal(t, "app", idx.byContainerID(strings.Repeat("c", 64)).ContainerName)
	assert.Equal(t, "app", idx.byContainerID(strings.Repeat("d", 64)).ContainerName, "last terminated container id")
	// A restart replaces the ids: the old running id is now the terminated one.
	pod.Status.ContainerStatuses[0].ContainerID = "containerd://" + strings.Repeat("e", 64)
	pod.Status.ContainerStatuses[0].LastTerminationState.Terminated.ContainerID = "containerd://" + strings.Repeat("c", 64)
	idx.upsert(pod)
	assert.Nil(t, idx.byContainerID(strings.Repeat("d", 64)))
	assert.NotNil(t, idx.byContainerID(strings.Repeat("e", 64)))
	idx.handlers().OnDelete(cache.DeletedFinalStateUnknown{Key: "n/p", Obj: pod})
	pods, containers := idx.len()
	assert.Zero(t, pods+containers)
}

func TestImageName(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                        "nginx",
		"nginx:1.27":                   "nginx",
		"docker.io/library/nginx:1.27": "docker.io/library/nginx",
		"localhost:5000/app":           "localhost:5000/app",
		"localhost:5000/app:v1":        "localhost:5000/app",
		"ghcr.io/x/y@sha256:" + cid:    "ghcr.io/x/y",
		"ghcr.io/x/y:v1@sha256:" + cid: "ghcr.io/x/y",
	} {
		assert.Equal(t, want, imageName(in), in)
	}
}
