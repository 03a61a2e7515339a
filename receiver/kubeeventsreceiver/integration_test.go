package kubeeventsreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestEventsOfBothAPIs creates a core/v1 Event about a pod and an
// events.k8s.io/v1 Event about a node through the API; a receiver watching both
// APIs (the same stored objects) emits each once, with every attribute, and
// the pod's labels and workload from the pod cache.
func TestEventsOfBothAPIs(t *testing.T) {
	c, cs := cluster(t)
	ctx := context.Background()
	const ns = "default" // where Events about cluster-scoped objects (nodes) live
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns,
			Labels: map[string]string{"app": "web", "pod-template-hash": "7d9c8b6f5"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9c8b6f5",
				UID: "aa11bb22-cc33-4d44-8e55-ff6677889900", Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web:1"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	tr := startReceiver(t, c.Config, rcvOpts{mutate: func(cfg *Config) { cfg.APIs = []string{apiCore, apiEvents} }})

	ce := coreEvent(ns, "web-0.backoff", "BackOff", "Back-off restarting failed container web in pod web-0")
	ce.InvolvedObject.UID = pod.UID
	ce.Count = 3
	ce.ReportingController, ce.ReportingInstance = "kubelet", "node-1"
	created, err := cs.CoreV1().Events(ns).Create(ctx, ce, metav1.CreateOptions{})
	require.NoError(t, err)

	at := metav1.NewMicroTime(time.Date(2026, 11, 29, 10, 0, 0, 123456000, time.UTC))
	_, err = cs.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1.notready", Namespace: ns},
		EventTime:  at, ReportingController: "node-controller", ReportingInstance: "kcm-1",
		Action: "NodeNotReady", Reason: "NodeNotReady", Type: corev1.EventTypeNormal,
		Note:      "Node node-1 status is now: NodeNotReady",
		Regarding: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "n-1", APIVersion: "v1"},
		Series:    &eventsv1.EventSeries{Count: 2, LastObservedTime: at},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	waitFor(t, "two records", func() bool { return len(records(tr.sink)) >= 2 })
	// Both APIs deliver both Events: the second copies must be counted as
	// duplicates. Only then is it safe to say nothing more will come.
	waitFor(t, "two duplicates", func() bool { return counterValue(t, tr, "otelcol_receiver_kube_events_events_deduplicated") >= 2 })
	expectOnce(t, ns, []string{"web-0.backoff#3", "node-1.notready#2"}, tr.sink)

	byName := map[string]plog.LogRecord{}
	for _, lr := range records(tr.sink) {
		byName[attr(lr, attrEventName)] = lr
	}
	p := byName["web-0.backoff"]
	assert.Equal(t, "k8s.event", p.EventName())
	assert.Equal(t, plog.SeverityNumberWarn, p.SeverityNumber())
	assert.Equal(t, ce.Message, p.Body().Str())
	assert.Equal(t, ce.LastTimestamp.Time.UnixNano(), p.Timestamp().AsTime().UnixNano())
	for k, v := range map[string]string{
		attrEventUID: string(created.UID), attrEventType: "Warning", attrEventReason: "BackOff", attrEventCount: "3",
		attrNamespace: ns, attrSourceComponent: "kubelet", attrSourceHost: "node-1",
		attrReportingCtrl: "kubelet", attrReportingInstance: "node-1",
		attrEventFirstTime: ce.FirstTimestamp.UTC().Format(time.RFC3339Nano),
		attrObjectKind:     "Pod", attrObjectName: "web-0", attrObjectNamespace: ns, attrObjectUID: string(pod.UID),
		attrObjectFieldPath: "spec.containers{web}", attrObjectAPIVersion: "v1",
		attrPodName: "web-0", attrPodUID: string(pod.UID),
		"k8s.pod.label.app": "web", "k8s.replicaset.name": "web-7d9c8b6f5", "k8s.deployment.name": "web",
	} {
		assert.Equal(t, v, attr(p, k), k)
	}

	n := byName["node-1.notready"]
	assert.Equal(t, plog.SeverityNumberInfo, n.SeverityNumber())
	assert.Equal(t, "Node node-1 status is now: NodeNotReady", n.Body().Str())
	assert.Equal(t, at.UnixNano(), n.Timestamp().AsTime().UnixNano())
	for k, v := range map[string]string{
		attrEventAction: "NodeNotReady", attrEventCount: "2", attrReportingCtrl: "node-controller",
		attrReportingInstance: "kcm-1", attrEventTime: "2026-11-29T10:00:00.123456Z",
		attrEventLastTime: "2026-11-29T10:00:00.123456Z",
		attrObjectKind:    "Node", attrObjectName: "node-1", attrNodeName: "node-1",
	} {
		assert.Equal(t, v, attr(n, k), k)
	}
	_, hasPod := n.Attributes().Get(attrPodName)
	assert.False(t, hasPod)

	// A repeat of the pod's event (count 3 -> 4) is a new occurrence.
	created.Count = 4
	_, err = cs.CoreV1().Events(ns).Update(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitFor(t, "the repeat", func() bool { return occurrencesIn(ns, tr.sink)["web-0.backoff#4"] > 0 })
	expectOnce(t, ns, []string{"web-0.backoff#3", "web-0.backoff#4", "node-1.notready#2"}, tr.sink)
}
