package podidentity

import (
	"context"
	"encoding/binary"
	"net"
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
	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// requireRoot: creating cgroups and moving processes needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "podidentity: this test creates cgroup v2 directories and")
}

// containerCgroup is a real cgroup v2 directory named the way containerd (systemd
// driver) names a container's, below a test slice, with a process running in it.
type containerCgroup struct {
	mount string // cgroup2 mount point
	rel   string // path relative to the cgroup2 root
	dir   string
	id    uint64
	cmd   *exec.Cmd
}

func cgroup2Mount(t *testing.T) string {
	t.Helper()
	mp, _, err := FindCgroup2Mount("/proc/self/mountinfo")
	require.NoError(t, err)
	return mp
}

// makeContainerCgroup creates <mount>/k8ssec-test-<pid>-<n>.slice/
// kubepods-besteffort-pod<uid_>.slice/cri-containerd-<containerID>.scope and starts
// `sleep` inside it (clone3 CLONE_INTO_CGROUP). Cleanup kills the process and
// removes the directories leaf first.
func makeContainerCgroup(t *testing.T, podUID, containerID string) *containerCgroup {
	t.Helper()
	mount := cgroup2Mount(t)
	top := "k8ssec-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ".slice"
	rel := "/" + top + "/kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice/cri-containerd-" + containerID + ".scope"
	dir := mount + rel
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() {
		for d := dir; d != mount; d = filepath.Dir(d) {
			assert.Eventually(t, func() bool { return os.Remove(d) == nil }, 5*time.Second, 20*time.Millisecond, "rmdir %s", d)
		}
	})
	fd, err := os.Open(dir)
	require.NoError(t, err)
	defer fd.Close()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	id, err := CgroupID(dir)
	require.NoError(t, err)
	return &containerCgroup{mount: mount, rel: rel, dir: dir, id: id, cmd: cmd}
}

// TestRealCgroupNoCluster: a process in a real containerd-named cgroup; no
// Kubernetes client. Lookup by cgroup id and by pid give the container, runtime
// and pod UID from the path; this test process is a host process.
func TestRealCgroupNoCluster(t *testing.T) {
	requireRoot(t)
	podUID := "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a"
	cg := makeContainerCgroup(t, podUID, cid)

	// The cgroup id is the directory's inode: the kernel's own file handle of a
	// cgroup (what bpf_get_current_cgroup_id returns) says the same.
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, cg.dir, 0)
	require.NoError(t, err)
	require.Equal(t, 8, h.Size())
	assert.Equal(t, cg.id, binary.NativeEndian.Uint64(h.Bytes()), "file handle id vs inode")
	// /proc/PID/cgroup names the same directory.
	v2, _, err := ProcCgroups("/proc", cg.cmd.Process.Pid)
	require.NoError(t, err)
	assert.Equal(t, cg.rel, v2)

	r := New(Options{})
	require.NoError(t, r.Start(context.Background()))
	defer r.Stop()
	assert.Equal(t, cg.mount, r.CgroupRoot())

	want := Identity{Resolved: true, ContainerID: cid, Runtime: RuntimeContainerd, PodUID: podUID, CgroupPath: cg.rel}
	assert.Equal(t, want, r.Lookup(cg.id))
	byPID, err := r.LookupPID(cg.cmd.Process.Pid)
	require.NoError(t, err)
	assert.Equal(t, want, byPID)

	m := pcommon.NewMap()
	id := r.Lookup(cg.id)
	id.Attributes(m)
	assert.Equal(t, map[string]any{
		"container.id":           cid,
		"container.runtime.name": "containerd",
		"k8s.pod.uid":            podUID,
		"k8ssec.process.host":    false,
	}, m.AsRaw())

	// This test's own process: host (the cgroup2 root, or wherever it runs).
	self, err := r.LookupPID(os.Getpid())
	require.NoError(t, err)
	assert.True(t, self.Host, "%+v", self)
	ownV2, _, err := ProcCgroups("/proc", os.Getpid())
	require.NoError(t, err)
	ownID, err := CgroupID(cg.mount + ownV2)
	require.NoError(t, err)
	own := r.Lookup(ownID)
	assert.True(t, own.Resolved && own.Host && own.ContainerID == "", "%+v", own)
	m = pcommon.NewMap()
	own.Attributes(m)
	assert.Equal(t, map[string]any{"k8ssec.process.host": true}, m.AsRaw())

	// An id no cgroup has: unknown, writes nothing.
	assert.Equal(t, Identity{}, r.Lookup(1<<62))
	m = pcommon.NewMap()
	unknown := r.Lookup(1 << 62)
	unknown.Attributes(m)
	assert.Equal(t, 0, m.Len())

	// A container cgroup created after Start is named at its first lookup,
	// by its file handle, with no walk: a container's first exec has its id.
	walks := r.walks.Load()
	r.Lookup(1<<62 + 2) // a miss: were misses walks, the next one within a second would be refused
	cg2 := makeContainerCgroup(t, podUID, cid2)
	got := r.Lookup(cg2.id)
	assert.True(t, got.Resolved, "a new cgroup at its first lookup: %+v", got)
	assert.Equal(t, cid2, got.ContainerID)
	assert.Equal(t, cg2.rel, got.CgroupPath)
	assert.Equal(t, walks, r.walks.Load(), "handles, not walks")

	// Without handles (no CAP_DAC_READ_SEARCH), a miss re-walks, at most once
	// per MinWalkInterval.
	rw := New(Options{noHandles: true})
	require.NoError(t, rw.Start(context.Background()))
	defer rw.Stop()
	cg3 := makeContainerCgroup(t, podUID, cid3)
	require.Eventually(t, func() bool { got = rw.Lookup(cg3.id); return got.Resolved }, 3*time.Second, 50*time.Millisecond)
	assert.Equal(t, cid3, got.ContainerID)
	walks = rw.walks.Load()
	for range 100 {
		rw.Lookup(1<<62 + 1) // a storm of misses for another unknown id
	}
	assert.LessOrEqual(t, rw.walks.Load()-walks, int64(1), "misses must not re-walk more than once per second")
}

// TestRealCgroupWithAPIServer: the harness kube-apiserver holds a pod whose
// status names the container running in a real cgroup; Lookup by the cgroup
// id returns the pod, and deleting the pod removes it.
func TestRealCgroupWithAPIServer(t *testing.T) {
	requireRoot(t)
	c := k8stest.Start(t, k8stest.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	ctrl := true
	pod, err := cs.CoreV1().Pods("payments").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   "web-7d9f8-abcde",
			Labels: map[string]string{"app": "web", "tier": "frontend"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8",
				UID: types.UID("0a0b0c0d-0000-4000-8000-000000000001"), Controller: &ctrl,
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}, {Name: "sidecar", Image: "busybox:1.36"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// Another node's pod, naming cid2: the node's field selector must hide it.
	other, err := cs.CoreV1().Pods("payments").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"},
		Spec:       corev1.PodSpec{NodeName: "node-b", Containers: []corev1.Container{{Name: "x", Image: "x"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	other.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "x", Image: "x", ContainerID: "containerd://" + cid2}}
	_, err = cs.CoreV1().Pods("payments").UpdateStatus(ctx, other, metav1.UpdateOptions{})
	require.NoError(t, err)

	cg := makeContainerCgroup(t, string(pod.UID), cid)

	r := New(Options{Client: coreV1(t, c.Config), NodeName: "node-a", SyncTimeout: 30 * time.Second})
	require.NoError(t, r.Start(ctx))
	defer r.Stop()

	// Before the kubelet would report the container: the pod is found by the
	// pod UID in the cgroup path, without container fields.
	early := r.Lookup(cg.id)
	require.NotNil(t, early.Pod)
	assert.Equal(t, "web-7d9f8-abcde", early.Pod.Name)
	assert.Empty(t, early.Pod.ContainerName)

	pod.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "app", Image: "docker.io/library/nginx:1.27", ImageID: "sha256:aa", ContainerID: "containerd://" + cid, Ready: true},
		{Name: "sidecar", Image: "docker.io/library/busybox:1.36", ContainerID: "containerd://" + strings.Repeat("b", 64)},
	}
	_, err = cs.CoreV1().Pods("payments").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	var got Identity
	require.Eventually(t, func() bool {
		got = r.Lookup(cg.id)
		return got.Pod != nil && got.Pod.ContainerName != ""
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, Identity{
		Resolved: true, ContainerID: cid, Runtime: RuntimeContainerd, PodUID: string(pod.UID), CgroupPath: cg.rel, Pod: got.Pod,
	}, got)
	p := got.Pod
	assert.Equal(t, string(pod.UID), p.UID)
	assert.Equal(t, "web-7d9f8-abcde", p.Name)
	assert.Equal(t, "payments", p.Namespace)
	assert.Equal(t, "node-a", p.NodeName)
	assert.Equal(t, map[string]string{"app": "web", "tier": "frontend"}, p.Labels)
	assert.Equal(t, "app", p.ContainerName)
	assert.Equal(t, "docker.io/library/nginx:1.27", p.Image)
	assert.Equal(t, "ReplicaSet", p.OwnerKind)
	assert.Equal(t, "web-7d9f8", p.OwnerName)

	m := pcommon.NewMap()
	got.Attributes(m)
	assert.Equal(t, map[string]any{
		"container.id":           cid,
		"container.runtime.name": "containerd",
		"container.image.name":   "docker.io/library/nginx",
		"k8s.pod.uid":            string(pod.UID),
		"k8s.pod.name":           "web-7d9f8-abcde",
		"k8s.namespace.name":     "payments",
		"k8s.node.name":          "node-a",
		"k8s.container.name":     "app",
		"k8s.replicaset.name":    "web-7d9f8",
		"k8s.pod.label.app":      "web",
		"k8s.pod.label.tier":     "frontend",
		"k8ssec.process.host":    false,
	}, m.AsRaw())

	// Same through /proc/PID/cgroup.
	byPID, err := r.LookupPID(cg.cmd.Process.Pid)
	require.NoError(t, err)
	assert.Same(t, p, byPID.Pod)

	// The other node's pod is not watched.
	assert.Nil(t, r.index.byContainerID(cid2))
	assert.Nil(t, r.index.byPodUID(string(other.UID)))
	assert.NotNil(t, r.index.byContainerID(strings.Repeat("b", 64)))

	// Deleting the pod removes it; the path still gives the container.
	zero := int64(0)
	require.NoError(t, cs.CoreV1().Pods("payments").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	require.Eventually(t, func() bool { got = r.Lookup(cg.id); return got.Pod == nil }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, Identity{Resolved: true, ContainerID: cid, Runtime: RuntimeContainerd, PodUID: string(pod.UID), CgroupPath: cg.rel,
		PodPending: true, PendingReason: PendingPodNotSeen}, got)
	assert.Nil(t, r.index.byContainerID(strings.Repeat("b", 64)))
	pods, containers := r.index.len()
	assert.Equal(t, 0, pods)
	assert.Equal(t, 0, containers)

	// Start fails clearly when the watch is refused (real RBAC: no grants).
	denied := New(Options{Client: coreV1(t, c.ConfigAs("nobody")), NodeName: "node-a", SyncTimeout: 2 * time.Second})
	err = denied.Start(ctx)
	denied.Stop()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not sync within 2s")
	assert.Contains(t, err.Error(), "forbidden")
}

// TestStartsWithoutTheAPIServer: with the apiserver unreachable, Start gives
// up after SyncTimeout with ErrNotSynced but the resolver works: a pod's
// container is resolved from its cgroup, marked pod-pending. When the
// apiserver becomes reachable, the informer (still retrying) syncs, says so
// once, and the same lookup gives the pod.
func TestStartsWithoutTheAPIServer(t *testing.T) {
	requireRoot(t)
	c := k8stest.Start(t, k8stest.Options{})
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "late-1"},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	cg := makeContainerCgroup(t, string(pod.UID), cid)

	// The client talks to a port where nothing listens yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := rest.CopyConfig(c.Config)
	cfg.Host = "https://" + addr
	synced := make(chan struct{})
	r := New(Options{Client: coreV1(t, cfg), NodeName: "node-a", SyncTimeout: time.Second,
		OnLateSync: func() { close(synced) }})
	err = r.Start(ctx)
	defer r.Stop()
	require.ErrorIs(t, err, ErrNotSynced)
	assert.False(t, r.Synced())
	early := r.Lookup(cg.id)
	assert.Equal(t, Identity{Resolved: true, ContainerID: cid, Runtime: RuntimeContainerd, PodUID: string(pod.UID),
		CgroupPath: cg.rel, PodPending: true, PendingReason: PendingWatchNotSynced}, early)
	m := pcommon.NewMap()
	early.Attributes(m)
	assert.Equal(t, true, m.AsRaw()[AttrPodPending])
	assert.Equal(t, "pod_watch_not_synced", m.AsRaw()[AttrPodPendingReason])

	// The apiserver becomes reachable at that address.
	c.ReachableAt(t, addr)
	select {
	case <-synced:
	case <-time.After(60 * time.Second):
		t.Fatal("the informer did not sync once the apiserver was reachable")
	}
	assert.True(t, r.Synced())
	got := r.Lookup(cg.id)
	require.NotNil(t, got.Pod, "the pod, once the watch has synced")
	assert.Equal(t, "late-1", got.Pod.Name)
	assert.False(t, got.PodPending)
}

// TestConcurrentLookups: lookups (hits and misses) race pod updates; run with -race.
func TestConcurrentLookups(t *testing.T) {
	dir := t.TempDir() // a plain directory tree stands in for the cgroup mount
	rel := "/kubepods/besteffort/pod" + uid + "/" + cid
	require.NoError(t, os.MkdirAll(dir+rel, 0o755))
	require.NoError(t, os.WriteFile(dir+"/cgroup.procs", nil, 0o600))
	cgid, err := CgroupID(dir + rel)
	require.NoError(t, err)
	r := New(Options{CgroupRoot: dir})
	require.NoError(t, r.Start(context.Background()))
	defer r.Stop()
	r.index = newPodIndex(DefaultMaxLabels) // as if a client were set
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", UID: uid}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + cid}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			r.index.upsert(pod)
			r.index.remove(uid)
		}
		r.index.upsert(pod)
	}()
	errs := make(chan Identity, 4)
	for g := range 4 {
		go func() {
			for i := range 2000 {
				id := r.Lookup(cgid)
				if !id.Resolved || id.ContainerID != cid || id.PodUID != uid || (id.Pod != nil && id.Pod.UID != uid) {
					errs <- id
					return
				}
				r.Lookup(uint64(1<<40 + g*10000 + i)) // misses
			}
			errs <- Identity{Resolved: true}
		}()
	}
	for range 4 {
		got := <-errs
		require.True(t, got.Resolved && got.ContainerID == "", "bad identity %+v", got)
	}
	<-done
	got := r.Lookup(cgid)
	require.NotNil(t, got.Pod)
	assert.Equal(t, "app", got.Pod.ContainerName)
	assert.Equal(t, RuntimeContainerd, got.Runtime, "runtime from the status when the cgroupfs path has none")
}

// coreV1 is the pod watch's client, as the ebpf receiver builds it.
func coreV1(t *testing.T, cfg *rest.Config) *k8sclient.CoreV1 {
	t.Helper()
	core, err := k8sclient.NewCoreV1(cfg)
	require.NoError(t, err)
	return core
}
