package kubeeventsreceiver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

// waitLong bounds the waits for something to arrive; never asserted as a speed.
const waitLong = 90 * time.Second

// testReceiver is a started receiver with what the test looks at.
type testReceiver struct {
	r       *eventsReceiver
	sink    *consumertest.LogsSink
	tel     *componenttest.Telemetry
	logs    *observer.ObservedLogs
	storage extension.Extension
	stopped bool
}

type rcvOpts struct {
	storageDir string // "" = no storage
	crash      bool   // Shutdown does not release the Lease
	mutate     func(*Config)
}

// startReceiver runs a kube_events receiver against restCfg: leader election
// off, start_at beginning, fast backoff, unless mutate says otherwise.
func startReceiver(t *testing.T, restCfg *rest.Config, o rcvOpts) *testReceiver {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.LeaderElection.Enabled = false
	cfg.StartAt = startAtBeginning
	cfg.Backoff.InitialInterval = 100 * time.Millisecond
	cfg.Backoff.MaxInterval = 2 * time.Second
	if o.mutate != nil {
		o.mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tr := &testReceiver{sink: new(consumertest.LogsSink), tel: componenttest.NewTelemetry()}
	core, logs := observer.New(zap.DebugLevel)
	tr.logs = logs
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type) // the storage client is per component ID: a restart keeps it
	set.TelemetrySettings = tr.tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	r, err := newEventsReceiver(set, cfg, tr.sink)
	require.NoError(t, err)
	r.restConfig = restCfg
	r.releaseOnCancel = !o.crash
	tr.r = r
	host := component.Host(componenttest.NewNopHost())
	if o.storageDir != "" {
		cfg.StorageID = &storagetest.ID
		tr.storage = storagetest.Start(t, o.storageDir)
		host = storagetest.Host(host, tr.storage)
	}
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { tr.stop(t) })
	return tr
}

func (tr *testReceiver) stop(t *testing.T) {
	t.Helper()
	if tr.stopped {
		return
	}
	tr.stopped = true
	require.NoError(t, tr.r.Shutdown(context.Background()))
	if tr.storage != nil {
		require.NoError(t, tr.storage.Shutdown(context.Background()))
	}
	require.NoError(t, tr.tel.Shutdown(context.Background()))
}

// records flattens what the sink holds.
func records(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, l := range sink.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			sls := l.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, lrs.At(k))
				}
			}
		}
	}
	return out
}

func attr(lr plog.LogRecord, k string) string {
	v, ok := lr.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

// occurrencesIn counts each (event name, count) the sinks hold, in namespace ns.
func occurrencesIn(ns string, sinks ...*consumertest.LogsSink) map[string]int {
	out := map[string]int{}
	for _, s := range sinks {
		for _, lr := range records(s) {
			if attr(lr, attrNamespace) == ns {
				out[attr(lr, attrEventName)+"#"+attr(lr, attrEventCount)]++
			}
		}
	}
	return out
}

// waitFor polls cond until it holds; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitLong, 20*time.Millisecond, "waiting for %s", what)
}

func createNamespace(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// coreEvent is a core/v1 Event about a pod, as the kubelet writes them.
func coreEvent(ns, name, reason, msg string) *corev1.Event {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-0", APIVersion: "v1",
			FieldPath: "spec.containers{web}"},
		Reason: reason, Message: msg, Type: corev1.EventTypeWarning, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
	}
}

// createEvents creates n core/v1 Events named prefix-<i> in ns, sequentially.
func createEvents(t *testing.T, cs kubernetes.Interface, ns, prefix string, n int) {
	t.Helper()
	for i := range n {
		_, err := cs.CoreV1().Events(ns).Create(context.Background(),
			coreEvent(ns, fmt.Sprintf("%s-%d", prefix, i), "BackOff", "Back-off restarting failed container"), metav1.CreateOptions{})
		require.NoError(t, err)
	}
}

// expectOnce asserts that each of the named occurrences (name#count) was
// emitted exactly once across sinks, and nothing else in ns.
func expectOnce(t *testing.T, ns string, want []string, sinks ...*consumertest.LogsSink) {
	t.Helper()
	got := occurrencesIn(ns, sinks...)
	for _, w := range want {
		if got[w] != 1 {
			t.Errorf("%s emitted %d times, want once", w, got[w])
		}
		delete(got, w)
	}
	if len(got) > 0 {
		t.Errorf("unexpected occurrences: %v", got)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d#1", prefix, i)
	}
	return out
}

// cluster starts the harness apiserver; extra flags go to kube-apiserver. The
// clientset is the test's writer, unthrottled: it stands for a cluster's many
// kubelets and controllers. Receivers get c.Config, with client-go's default
// rate limits, as in production.
func cluster(t testing.TB, extra ...string) (*k8stest.Cluster, kubernetes.Interface) {
	t.Helper()
	c := k8stest.Start(t, k8stest.Options{ExtraArgs: extra})
	return c, kubernetes.NewForConfigOrDie(k8stest.Unthrottled(c.Config))
}

// counterValue sums every data point of a self-metric (0 before the first).
func counterValue(t *testing.T, tr *testReceiver, name string) int64 {
	t.Helper()
	m, err := tr.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			n += dp.Value
		}
	}
	return n
}
