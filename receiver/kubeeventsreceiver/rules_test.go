package kubeeventsreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// eventRulesMatching names the k8s_events pack's rules that e raises an alert
// for, once this receiver has mapped it: the rules read the record the
// receiver writes, not a hand-made one.
func eventRulesMatching(t *testing.T, e *corev1.Event) []string {
	t.Helper()
	lr := plog.NewLogRecord()
	mapEvent(e, nil, pcommon.NewTimestampFromTime(time.Now()), lr)
	return recordRulesMatching(t, lr)
}

// recordRulesMatching names the k8s_events pack's rules that alert on lr.
func recordRulesMatching(t *testing.T, lr plog.LogRecord) []string {
	t.Helper()
	data, ok := rulepacks.Pack("k8s_events")
	require.True(t, ok)
	set, err := rules.Load([]rules.Source{{Name: "k8s_events", Data: data}}, rules.Options{})
	require.NoError(t, err)
	ev := rules.EventFromRecord(lr, pcommon.NewMap())
	var names []string
	for _, m := range rules.NewEngine(set, rules.StateConfig{}).Evaluate(&ev, nil) {
		names = append(names, m.Rule.Name)
	}
	return names
}

// The two misses: node-problem-detector's OOMKilling, and a BackOff
// Event whose count says the container has restarted 25 times, seen once
// (the receiver started late, or the kubelet's repeats were aggregated).
func TestEventsPackOnMappedEvents(t *testing.T) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	oom := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "node-1.17e3", Namespace: "default", UID: "u1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"},
		Reason:         "OOMKilling", Type: corev1.EventTypeWarning, Count: 1,
		Message:        "Out of memory: Killed process 4242 (java) total-vm:5040980kB, anon-rss:3991324kB, file-rss:0kB",
		Source:         corev1.EventSource{Component: "kernel-monitor", Host: "node-1"},
		FirstTimestamp: now, LastTimestamp: now,
	}
	assert.Contains(t, eventRulesMatching(t, oom), "Kernel OOM killer on a node")
	// A pod's container OOMKilled is the kubelet's report of a limit, not the kernel monitor's.
	podOOM := oom.DeepCopy()
	podOOM.InvolvedObject = corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0"}
	podOOM.Reason, podOOM.Source.Component = "OOMKilled", "kubelet"
	assert.NotContains(t, eventRulesMatching(t, podOOM), "Kernel OOM killer on a node")

	backoff := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-crash-0.17e4", Namespace: "default", UID: "u2"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-crash-0", APIVersion: "v1", FieldPath: "spec.containers{web}"},
		Reason:         "BackOff", Type: corev1.EventTypeWarning, Count: 25,
		Message:        "Back-off restarting failed container web in pod web-crash-0_default(0b1c)",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(now.Add(-40 * time.Minute)), LastTimestamp: now,
	}
	assert.Contains(t, eventRulesMatching(t, backoff), "Container restarted over and over")
	backoff.Count = 1
	assert.NotContains(t, eventRulesMatching(t, backoff), "Container restarted over and over",
		"a first back-off is ordinary")

	// The kubelet's own report of a system OOM kill, on the Node.
	sysOOM := oom.DeepCopy()
	sysOOM.Reason, sysOOM.Source.Component = "SystemOOM", "kubelet"
	sysOOM.Message = "System OOM encountered, victim process: xmrig, pid: 31337"
	assert.Contains(t, eventRulesMatching(t, sysOOM), "Kernel OOM killer on a node")
}

// TestEventsPackThroughTheAPI: the same two Events created in a real
// kube-apiserver and received by the receiver's watch (node-problem-detector
// reports on the Node, in the default namespace).
func TestEventsPackThroughTheAPI(t *testing.T) {
	c, cs := cluster(t)
	ctx := context.Background()
	const ns = "default"
	tr := startReceiver(t, c.Config, rcvOpts{})

	now := metav1.NewTime(time.Now().Truncate(time.Second))
	_, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "node-1.oom", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"},
		Reason:         "OOMKilling", Type: corev1.EventTypeWarning, Count: 1,
		Message:        "Out of memory: Killed process 4242 (java) total-vm:5040980kB, anon-rss:3991324kB, file-rss:0kB",
		Source:         corev1.EventSource{Component: "kernel-monitor", Host: "node-1"},
		FirstTimestamp: now, LastTimestamp: now,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	backoff := coreEvent(ns, "web-0.crashloop", "BackOff", "Back-off restarting failed container web in pod web-0_default(0b1c)")
	backoff.Count = 25
	backoff.FirstTimestamp = metav1.NewTime(now.Add(-40 * time.Minute))
	_, err = cs.CoreV1().Events(ns).Create(ctx, backoff, metav1.CreateOptions{})
	require.NoError(t, err)

	waitFor(t, "both records", func() bool { return len(records(tr.sink)) >= 2 })
	alerts := map[string][]string{}
	for _, lr := range records(tr.sink) {
		alerts[attr(lr, attrEventName)] = recordRulesMatching(t, lr)
	}
	assert.Contains(t, alerts["node-1.oom"], "Kernel OOM killer on a node")
	assert.Contains(t, alerts["web-0.crashloop"], "Container restarted over and over")
}
