//go:build linux

package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rules tier's stateful rules run on event time (security_rules'
// reorder_window, 10 s in gateway-rules.yaml by default): a step that arrives
// before the step it follows waits for it. Its watermark is the newest event
// time it has seen less the window, or, once that time has stood still for a
// window of wall time, that time itself; a step older than the watermark is
// late, skipped by the sequences and counted in
// otelcol_processor_security_rules_late_events.

const (
	lateEventsMetric = "otelcol_processor_security_rules_late_events"
	execThenShell    = "Shell in a pod right after an exec through the API" // correlation K8SC-0040: exec, then a shell within 30s
	execOrAttach     = "Exec or attach into a pod"                          // k8s_audit K8SA-0018: a throttle by audit ID, not held
)

// rulesLate sums the late events of the rules replicas, failing when one
// does not answer (an unread endpoint must not pass for none).
func (ts *tiers) rulesLate(t require.TestingT) float64 {
	var total float64
	for _, port := range ts.rulesMetrics {
		v, err := scrapeMetric(port, lateEventsMetric, "")
		require.NoError(t, err)
		total += v
	}
	return total
}

// alertsForPod returns the backend's alerts of rule about pod.
func alertsForPod(t *testing.T, out, rule, pod string) []alert {
	t.Helper()
	var of []alert
	for _, a := range alertsOf(t, out, rule) {
		if attr(a.LogRecord, "k8s.pod.name") == pod {
			of = append(of, a)
		}
	}
	return of
}

// The apiserver batches audit events for up to 5 s, so the pods/exec comes
// after the shell it started: here 4 s after the agent's kernel events reached
// the rules tier, through the other front, its own time before theirs. The
// rules replica holds the shell and the connection until the exec is in its
// place, and the sequence fires exactly once; nothing is late.
func TestTiersSequenceOutOfOrder(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	a, b := ts.startFront(t, nil, []string{r1, r2}), ts.startFront(t, nil, []string{r1, r2})

	const pod = "web-4s"
	now := time.Now()
	exec := podsExec(uniqueID("exec", 0), "shop", pod, now)
	ts.exportOTLP(t, b, kernelEvents("shop", pod, now.Add(time.Second)))
	sent := time.Now()
	ts.settle(t, 2) // the shell and the connection, one copy each (the pod's family)
	time.Sleep(time.Until(sent.Add(4 * time.Second)))
	ts.postAuditTo(t, a, eventList(t, exec))

	// Released when the replica's newest event time has stood still for the
	// window (10 s of wall time): up to about 12 s, and the backend's batch.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.NotEmpty(ct, alertsForPod(t, ts.backendOut, execShellConnect, pod))
	}, 60*time.Second, 200*time.Millisecond)
	time.Sleep(3 * time.Second) // a second alert would be here by now
	alerts := alertsForPod(t, ts.backendOut, execShellConnect, pod)
	require.Len(t, alerts, 1, "exactly once")
	assert.Equal(t, "203.0.113.9", attr(alerts[0].LogRecord, "server.address"))
	assert.Equal(t, "bash", alerts[0].Resource.AsRaw()["process.executable.name"], "the alert carries the last step's resource")
	ev, ok := alerts[0].Attributes().Get("security_rule.evidence")
	require.True(t, ok, "a sequence's alert names its steps")
	var steps []string
	for _, step := range ev.Slice().AsRaw() {
		m := step.(map[string]any)
		steps = append(steps, m["step"].(string)+" "+m["event.name"].(string))
		if m["step"] == "exec" {
			assert.Equal(t, exec["auditID"], m["attributes"].(map[string]any)["k8s.audit.id"], "the exec is the one delivered last")
		}
	}
	assert.Equal(t, []string{"exec k8s.audit", "shell process.exec", "connect network.connect"}, steps, "in event-time order")
	assert.Len(t, alertsForPod(t, ts.backendOut, execThenShell, pod), 1, "the exec and the shell, 1 s apart in event time")
	assert.Zero(t, ts.rulesLate(t), "4 s is within the reorder window")
}

// An exec that comes after the rules tier's watermark passed its time is late:
// the sequences skip it and count it, so neither correlation rule fires. It
// is late in two ways:
//   - by event time: its own time 30 s before the kernel events', which the
//     rules replica has seen, is behind their time less the window the moment
//     it arrives, without waiting;
//   - by wall time: an exec with its true time (before the shell), delivered
//     30 s after the kernel events. The replica saw no newer event time for a
//     window and let the shell and the connection go without it; its watermark
//     is now theirs, and the exec is behind it.
//
// Either way the exec still reaches the backend (from the front) and the
// rules that hold nothing evaluate it: the exec throttle alerts on each.
func TestTiersLateSequenceStepIsCounted(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	a, b := ts.startFront(t, nil, []string{r1, r2}), ts.startFront(t, nil, []string{r1, r2})

	// Each exec feeds two key families: the pod (the sequences) and its audit
	// ID (the throttle); the shell and the connection the pod's only.
	const podEventTime, podWallTime = "web-old", "web-delayed"
	now := time.Now()
	ts.exportOTLP(t, b, kernelEvents("shop", podEventTime, now))
	ts.settle(t, 2)
	oldID := uniqueID("exec-old", 0)
	ts.postAuditTo(t, a, eventList(t, podsExec(oldID, "shop", podEventTime, now.Add(-30*time.Second))))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, 1.0, ts.rulesLate(ct))
	}, 30*time.Second, 200*time.Millisecond, "the exec 30 s older than the shell is late")

	later := time.Now()
	ts.exportOTLP(t, b, kernelEvents("shop", podWallTime, later.Add(time.Second)))
	sent := time.Now()
	ts.settle(t, 6)
	time.Sleep(time.Until(sent.Add(30 * time.Second)))
	delayedID := uniqueID("exec-delayed", 0)
	ts.postAuditTo(t, a, eventList(t, podsExec(delayedID, "shop", podWallTime, later)))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, 2.0, ts.rulesLate(ct))
	}, 30*time.Second, 200*time.Millisecond, "the exec delivered 30 s after the shell is late")

	ts.settle(t, 8)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		counts, err := auditCounts(ts.backendOut)
		if assert.NoError(ct, err) {
			assert.Equal(ct, 1, counts[oldID])
			assert.Equal(ct, 1, counts[delayedID])
		}
		for _, pod := range []string{podEventTime, podWallTime} {
			assert.Len(ct, alertsForPod(t, ts.backendOut, execOrAttach, pod), 1, "the throttle evaluates a late event")
		}
	}, 30*time.Second, 200*time.Millisecond)
	// The kernel steps went 10-12 s after they came, long before: an alert
	// they made would be here with the throttle's.
	time.Sleep(3 * time.Second)
	for _, pod := range []string{podEventTime, podWallTime} {
		assert.Empty(t, alertsForPod(t, ts.backendOut, execShellConnect, pod), pod)
		assert.Empty(t, alertsForPod(t, ts.backendOut, execThenShell, pod), pod)
	}
	assert.Equal(t, 2.0, ts.rulesLate(t), "each exec counted once")
}
