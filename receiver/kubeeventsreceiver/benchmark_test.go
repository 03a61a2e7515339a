package kubeeventsreceiver

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

const burst = 10000

// BenchmarkWatchToPdata measures the receiver from a real apiserver's watch to
// pdata handed to the consumer: a burst of 10,000 Events is created once, then
// each iteration watches it again from the resourceVersion before the burst
// (decode, conversion, dedupe, pod enrichment, mapping, ConsumeLogs, checkpoint).
func BenchmarkWatchToPdata(b *testing.B) {
	c, cs := cluster(b)
	const ns = "burst"
	createNamespace(b, cs, ns)
	l, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{Limit: 1})
	require.NoError(b, err)
	before := l.ResourceVersion
	createBurst(b, cs, ns, burst)

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Namespaces = []string{ns}
	client, err := newClient(c.Config)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		next := &countingConsumer{want: burst, done: cancel}
		r := benchReceiver(b, cfg, next)
		r.client = client
		r.pods = newPodCache(client, cfg.Pods, r.podLookupFailed)
		r.pods.start()
		s := &stream{r: r, api: apiCore, namespace: ns}
		_, err := s.watch(ctx, before)
		require.NoError(b, err)
		require.Equal(b, int64(burst), next.n.Load())
		cancel()
		r.pods.shutdown()
	}
	b.ReportMetric(float64(burst*b.N)/time.Since(start).Seconds(), "events/s")
	// The apiserver and etcd share the machine; this is the receiver's own share.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(burst*b.N), "receiver-cpu-µs/event")
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMapping is the part of the above without the API: 10,000 Events to
// one plog.Logs, with pod enrichment from a warm cache.
func BenchmarkMapping(b *testing.B) {
	events := make([]*corev1.Event, burst)
	for i := range events {
		events[i] = coreEvent("shop", fmt.Sprintf("web-0.%d", i), "BackOff", "Back-off restarting failed container web in pod web-0_shop")
		events[i].UID = types.UID(fmt.Sprintf("uid-%d", i))
		events[i].InvolvedObject.UID = "pod-uid"
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	r := benchReceiver(b, cfg, nil)
	r.pods = newPodCache(nil, cfg.Pods, nil)
	r.pods.add("pod-uid", r.pods.metaOf(syntheticPod(0)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		logs := r.toLogs(events)
		if logs.LogRecordCount() != burst {
			b.Fatal(logs.LogRecordCount())
		}
	}
	b.ReportMetric(float64(burst*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkCacheMemory fills the pod cache with 10,000 pods (8 labels each,
// owned by a ReplicaSet) and the dedupe cache with 10,000 occurrences, and
// reports the heap they hold.
func BenchmarkCacheMemory(b *testing.B) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	pods := make([]*corev1.Pod, burst)
	for i := range pods {
		pods[i] = syntheticPod(i)
	}
	var podBytes, dedupeBytes float64
	for b.Loop() {
		base := heapInUse()
		pc := newPodCache(nil, cfg.Pods, nil)
		for _, p := range pods {
			pc.add(string(p.UID), pc.metaOf(p))
		}
		mid := heapInUse()
		dd, _ := lru.New[string, struct{}](cfg.DedupeCacheSize)
		for i := range burst {
			dd.Add(fmt.Sprintf("0b6f1c2e-5d4a-4f3b-9c8d-%012d/%d", i, 1+i%7), struct{}{})
		}
		end := heapInUse()
		podBytes, dedupeBytes = float64(mid-base), float64(end-mid)
		runtime.KeepAlive(pc)
		runtime.KeepAlive(dd)
	}
	b.ReportMetric(podBytes/burst, "pod-cache-B/pod")
	b.ReportMetric(podBytes/(1<<20), "pod-cache-MiB")
	b.ReportMetric(dedupeBytes/burst, "dedupe-B/entry")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func syntheticPod(i int) *corev1.Pod {
	rs := fmt.Sprintf("api-%d-7d9c8b6f5", i/10)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("%s-%05d", rs, i), Namespace: "shop", UID: types.UID(fmt.Sprintf("0b6f1c2e-5d4a-4f3b-9c8d-%012d", i)),
		Labels: map[string]string{"app": "api", "app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-prod",
			"app.kubernetes.io/version": "2.4.1", "app.kubernetes.io/component": "backend", "app.kubernetes.io/part-of": "shop",
			"team": "payments", "pod-template-hash": "7d9c8b6f5"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs, Controller: ptrTrue()}},
	}}
}

func ptrTrue() *bool { t := true; return &t }

func benchReceiver(b *testing.B, cfg *Config, next consumer.Logs) *eventsReceiver {
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = componenttest.NewNopTelemetrySettings()
	r, err := newEventsReceiver(set, cfg, next)
	require.NoError(b, err)
	r.ckpt = &checkpoints{}
	return r
}

// countingConsumer ends the watch once it has seen want records.
type countingConsumer struct {
	want int64
	n    atomic.Int64
	done context.CancelFunc
}

func (c *countingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *countingConsumer) ConsumeLogs(_ context.Context, l plog.Logs) error {
	if c.n.Add(int64(l.LogRecordCount())) >= c.want {
		c.done()
	}
	return nil
}

// createBurst creates n Events with 8 concurrent writers.
func createBurst(b *testing.B, cs kubernetes.Interface, ns string, n int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				_, err := cs.CoreV1().Events(ns).Create(context.Background(),
					coreEvent(ns, fmt.Sprintf("burst-%d", i), "BackOff", "Back-off restarting failed container"), metav1.CreateOptions{})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
