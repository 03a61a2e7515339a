package podidentity

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// fakePod is a realistic pod as the apiserver returns it: three containers,
// eight labels, annotations, managed fields, env and volumes.
func fakePod(i int) *corev1.Pod {
	ctrl := true
	name := "svc-" + strconv.Itoa(i%500) + "-7d9f8c6b5-" + strconv.Itoa(i)
	labels := map[string]string{
		"app.kubernetes.io/name": "svc-" + strconv.Itoa(i%500), "app.kubernetes.io/instance": "prod",
		"app.kubernetes.io/version": "1.2.3", "app.kubernetes.io/component": "api",
		"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm",
		"pod-template-hash": "7d9f8c6b5", "team": "payments",
	}
	var containers []corev1.Container
	var statuses []corev1.ContainerStatus
	for c, cn := range []string{"app", "envoy", "log-shipper"} {
		containers = append(containers, corev1.Container{
			Name: cn, Image: "registry.example.com/shop/" + cn + ":1.2.3",
			Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}, {Name: "LOG_LEVEL", Value: "info"}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
		})
		statuses = append(statuses, corev1.ContainerStatus{
			Name: cn, Image: "registry.example.com/shop/" + cn + ":1.2.3", ImageID: "registry.example.com/shop/" + cn + "@sha256:" + fmt.Sprintf("%064x", c),
			ContainerID: "containerd://" + fmt.Sprintf("%060x%04x", i, c), Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns-" + strconv.Itoa(i%50), UID: types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)),
			ResourceVersion: strconv.Itoa(1000 + i), Labels: labels,
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z", "prometheus.io/scrape": "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "svc-7d9f8c6b5", UID: "u", Controller: &ctrl}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: "Update", APIVersion: "v1",
				FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(string(make([]byte, 2048)))}},
		},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: containers, ServiceAccountName: "default",
			Volumes: []corev1.Volume{{Name: "kube-api-access"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", ContainerStatuses: statuses},
	}
}

// feed adds pods the way the informer does: transform, store in the
// informer's indexer, then the add handler.
func feed(store cache.Indexer, idx *podIndex, n int) {
	h := idx.handlers()
	for i := range n {
		obj, _ := trimPod(fakePod(i))
		_ = store.Add(obj)
		h.OnAdd(obj, true)
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryPer10000Pods measures the informer store (trimmed pods) plus the
// index for 10,000 pods of three containers and eight labels.
func TestMemoryPer10000Pods(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement")
	}
	before := heapAfterGC()
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	idx := newPodIndex(DefaultMaxLabels)
	feed(store, idx, 10000)
	after := heapAfterGC()
	pods, containers := idx.len()
	require.Equal(t, 10000, pods)
	require.Equal(t, 30000, containers)
	mib := float64(after-before) / (1 << 20)
	t.Logf("10,000 pods (30,000 containers, 8 labels each): %.1f MiB (store + index), %.0f bytes/pod", mib, float64(after-before)/10000)
	assert.Less(t, mib, 64.0)
	runtime.KeepAlive(store)
	runtime.KeepAlive(idx)
}

// BenchmarkLookupWarm: a cached cgroup id whose container is in an index of
// 10,000 pods.
func BenchmarkLookupWarm(b *testing.B) {
	r := New(Options{Client: nil})
	r.index = newPodIndex(DefaultMaxLabels)
	feed(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), r.index, 10000)
	pod := fakePod(4242)
	_, id := splitContainerID(pod.Status.ContainerStatuses[1].ContainerID)
	path := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + string(pod.UID) + ".slice/cri-containerd-" + id + ".scope"
	r.cache.Add(12345, cgEntry{found: true, path: path, info: ParsePath(path)})
	if got := r.Lookup(12345); got.Pod == nil || got.Pod.ContainerName != "envoy" {
		b.Fatalf("%+v", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = r.Lookup(12345)
	}
}

// BenchmarkLookupAttributes adds writing the attributes into a reused map.
func BenchmarkLookupAttributes(b *testing.B) {
	r := New(Options{Client: nil})
	r.index = newPodIndex(DefaultMaxLabels)
	feed(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}), r.index, 10000)
	pod := fakePod(4242)
	_, id := splitContainerID(pod.Status.ContainerStatuses[0].ContainerID)
	path := "/kubepods/burstable/pod" + string(pod.UID) + "/" + id
	r.cache.Add(12345, cgEntry{found: true, path: path, info: ParsePath(path)})
	m := pcommon.NewMap()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.Clear()
		id := r.Lookup(12345)
		id.Attributes(m)
	}
}

func BenchmarkParsePath(b *testing.B) {
	path := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"
	b.ReportAllocs()
	for b.Loop() {
		_ = ParsePath(path)
	}
}
