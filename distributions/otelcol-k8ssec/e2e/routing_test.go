//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// The rules these tests drive, from the packs the gateway config loads.
const (
	failedLoginsRule = "Repeated authentication failures from one address" // k8s_audit K8SA-0005: 20 by client.address in 1m
	execShellConnect = "Exec into a pod, then a shell, then an outbound connection"
	traversalRule    = "Path traversal attempt" // ingress ING-0003: a throttle by client.address, 10m
)

// alertsOf returns the backend's alerts of rule.
func alertsOf(t *testing.T, out, rule string) []alert {
	t.Helper()
	alerts, err := readAlerts(out)
	require.NoError(t, err)
	return alerts[rule]
}

// twentyFailedLogins posts twenty failed logins from client, alternating
// between fronts a and b, and returns their audit IDs.
func (ts *tiers) twentyFailedLogins(t *testing.T, a, b *front, client string) []string {
	now := time.Now()
	var ids []string
	for i := range 20 {
		id := uniqueID("login", i)
		ids = append(ids, id)
		ts.postAuditTo(t, []*front{a, b}[i%2], eventList(t, failedLogin(id, client, now.Add(time.Duration(i)*time.Millisecond))))
	}
	return ids
}

// Twenty failed logins from one client, alternating between two front
// replicas: one rules replica counts them all and alerts once, with the count
// of twenty; neither front saw more than ten.
func TestTiersThresholdAcrossFrontReplicas(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	a, b := ts.startFront(t, nil, []string{r1, r2}), ts.startFront(t, nil, []string{r1, r2})

	const client = "198.51.100.40"
	ids := ts.twentyFailedLogins(t, a, b, client)
	ts.settle(t, 20)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Len(ct, alertsOf(t, ts.backendOut, failedLoginsRule), 1)
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(2 * time.Second) // a second alert, from a split count, would be here by now
	alerts := alertsOf(t, ts.backendOut, failedLoginsRule)
	require.Len(t, alerts, 1)
	assert.Equal(t, "20", attr(alerts[0].LogRecord, "security_rule.count"), "the full count, from both fronts")
	assert.Equal(t, client, attr(alerts[0].LogRecord, "client.address"))

	counts, err := auditCounts(ts.backendOut)
	require.NoError(t, err)
	for _, id := range ids {
		assert.Equal(t, 1, counts[id], "audit event %s reaches the backend once, from the front", id)
	}
}

// Without the tiers (every rule on each of two gateway replicas, as before),
// the same twenty failed logins are ten on each replica, and nothing alerts.
func TestUnroutedReplicasSplitTheThreshold(t *testing.T) {
	ts := newTiers(t)
	a, b := ts.startFront(t, nil, nil), ts.startFront(t, nil, nil)
	ids := ts.twentyFailedLogins(t, a, b, "198.51.100.41")
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		counts, err := auditCounts(ts.backendOut)
		if assert.NoError(ct, err) {
			for _, id := range ids {
				assert.Equal(ct, 1, counts[id])
			}
		}
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	assert.Empty(t, alertsOf(t, ts.backendOut, failedLoginsRule), "ten and ten: the split count never reaches twenty")
}

// kernelEvents is what a node agent sends for a shell in pod ns/pod that then
// connects out: ebpf records, the process and pod on the resource.
func kernelEvents(ns, pod string, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("k8s.namespace.name", ns)
	res.PutStr("k8s.pod.name", pod)
	res.PutStr("k8s.pod.uid", "7f1c2e1e-0000-4000-8000-000000000001")
	res.PutStr("k8s.node.name", "node-1")
	res.PutStr("container.id", "3b1f0c9a2d7e")
	res.PutInt("process.pid", 4242)
	res.PutStr("process.executable.name", "bash")
	res.PutStr("process.executable.path", "/usr/bin/bash")
	res.PutStr("process.command_line", "bash")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver")
	exec := sl.LogRecords().AppendEmpty()
	exec.SetEventName("process.exec")
	exec.SetTimestamp(pcommon.NewTimestampFromTime(at))
	exec.Attributes().PutInt("process.parent_pid", 4200)
	connect := sl.LogRecords().AppendEmpty()
	connect.SetEventName("network.connect")
	connect.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(2 * time.Second)))
	connect.Attributes().PutStr("server.address", "203.0.113.9")
	connect.Attributes().PutInt("server.port", 443)
	connect.Attributes().PutStr("network.transport", "tcp")
	return ld
}

func podsExec(id, ns, pod string, at time.Time) auditEvent {
	ts := at.UTC().Format(time.RFC3339Nano)
	return auditEvent{"level": "Metadata", "auditID": id, "stage": "ResponseStarted",
		"requestURI": fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/exec?command=bash&stdin=true&tty=true", ns, pod),
		"verb":       "create", "user": map[string]any{"username": "mallory@example.com", "groups": []string{"system:authenticated"}},
		"sourceIPs": []string{"10.1.2.3"}, "userAgent": "kubectl/v1.36.3 (linux/amd64)",
		"objectRef":      map[string]any{"resource": "pods", "subresource": "exec", "namespace": ns, "name": pod, "apiVersion": "v1"},
		"responseStatus": map[string]any{"code": 101}, "requestReceivedTimestamp": ts, "stageTimestamp": ts}
}

// The apiserver's pods/exec reaches one front replica, the agent's shell and
// connection the other: the events of the pod meet on one rules replica, and
// the correlation sequence fires once.
func TestTiersCrossSourceSequence(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	a, b := ts.startFront(t, nil, []string{r1, r2}), ts.startFront(t, nil, []string{r1, r2})

	now := time.Now()
	ts.postAuditTo(t, a, eventList(t, podsExec(uniqueID("exec", 0), "shop", "web-7", now)))
	// In order here (the exec at its rules replica first); TestTiersSequenceOutOfOrder
	// delivers it after the kernel events.
	ts.settle(t, 1)
	ts.exportOTLP(t, b, kernelEvents("shop", "web-7", now.Add(time.Second)))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.NotEmpty(ct, alertsOf(t, ts.backendOut, execShellConnect))
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	alerts := alertsOf(t, ts.backendOut, execShellConnect)
	require.Len(t, alerts, 1, "exactly once")
	assert.Equal(t, "web-7", attr(alerts[0].LogRecord, "k8s.pod.name"))
	assert.Equal(t, "203.0.113.9", attr(alerts[0].LogRecord, "server.address"))
}

// scaleClient is the address of client i of the membership tests.
func scaleClient(i int) string { return fmt.Sprintf("203.0.113.%d", i+1) }

// failedLoginsPhase posts, through each front, perFront failed logins of each
// of clients addresses at base + phase*20 s (event time), and returns their
// audit IDs.
func (ts *tiers) failedLoginsPhase(t *testing.T, fronts []*front, clients, perFront, phase int, base time.Time) []string {
	t.Helper()
	var ids []string
	for fi, f := range fronts {
		var items []auditEvent
		for c := range clients {
			for n := range perFront {
				id := uniqueID(fmt.Sprintf("p%d-c%d-f%d", phase, c, fi), n)
				ids = append(ids, id)
				at := base.Add(time.Duration(phase)*20*time.Second + time.Duration(n)*time.Millisecond)
				items = append(items, failedLogin(id, scaleClient(c), at))
			}
		}
		ts.postAuditTo(t, f, eventList(t, items...))
	}
	return ids
}

// movedClients returns the clients whose key the exporter's ring sends to
// another replica after the membership changed from before to after.
func movedClients(clients int, before, after []string) map[string]bool {
	moved := map[string]bool{}
	for c := range clients {
		id := rules.RoutingTraceID("client.address", scaleClient(c))
		if ringOwner(before, id[:]) != ringOwner(after, id[:]) {
			moved[scaleClient(c)] = true
		}
	}
	return moved
}

// assertThresholdLoss checks the failed-login alerts after a membership
// change: a moved client none (its first ten stayed behind), every other
// exactly one with the full count of twenty; and each audit event of ids
// reached the backend once.
func (ts *tiers) assertThresholdLoss(t *testing.T, clients int, moved map[string]bool, ids []string) {
	t.Helper()
	want := clients - len(moved)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Len(ct, alertsOf(t, ts.backendOut, failedLoginsRule), want)
	}, 30*time.Second, 200*time.Millisecond)
	time.Sleep(2 * time.Second)
	perClient := map[string]int{}
	for _, al := range alertsOf(t, ts.backendOut, failedLoginsRule) {
		perClient[attr(al.LogRecord, "client.address")]++
		assert.Equal(t, "20", attr(al.LogRecord, "security_rule.count"))
	}
	for c := range clients {
		k := scaleClient(c)
		if moved[k] {
			assert.Zero(t, perClient[k], "%s moved: its first ten stayed behind", k)
		} else {
			assert.Equal(t, 1, perClient[k], "%s stayed: one alert, never two", k)
		}
	}
	counts, err := auditCounts(ts.backendOut)
	require.NoError(t, err)
	for _, id := range ids {
		assert.Equal(t, 1, counts[id], "audit event %s reaches the backend once", id)
	}
}

// traversals is what node agents send for one path traversal attempt from
// each of clients addresses at at: ingress_log's http.access records.
func traversals(clients int, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.node.name", "node-1")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver")
	for c := range clients {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetEventName("http.access")
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
		a := lr.Attributes()
		a.PutStr("client.address", scaleClient(c))
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", "/static/../../../../etc/passwd")
		a.PutStr("k8ssec.url.normalized", "/static/../../../../etc/passwd")
		a.PutInt("http.response.status_code", 400)
		a.PutStr("k8s.namespace.name", "shop")
		a.PutStr("k8s.service.name", "web")
	}
	return ld
}

// A third rules replica joins mid-stream. Thirty clients each fail to log in
// ten times before it joins and ten times after, all within the rule's minute
// (event time). A client whose key stays on its replica reaches twenty there
// and alerts once; a client whose key moved to the new replica has its first
// ten left behind on the old one and its last ten counted afresh: no alert.
// That is the exact loss (ten matches per moved key, never an alert twice),
// and which keys move is what the exporter's hash ring says. Each client also
// tries a path traversal before and after, within the throttle's ten minutes:
// a stayed key alerts once, a moved one once more on its new replica.
func TestTiersScaleOutMovesKeysWithoutDuplicates(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	before := []string{r1, r2}
	a, b := ts.startFront(t, nil, before), ts.startFront(t, nil, before)

	const clients, perPhase = 30, 10
	base := time.Now()
	ids := ts.failedLoginsPhase(t, []*front{a, b}, clients, perPhase/2, 0, base)
	ts.exportOTLP(t, a, traversals(clients, base))
	ts.settle(t, clients*perPhase+clients) // one copy each, by client.address
	require.Empty(t, alertsOf(t, ts.backendOut, failedLoginsRule), "ten of twenty: nothing yet")
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Len(ct, alertsOf(t, ts.backendOut, traversalRule), clients)
	}, 30*time.Second, 200*time.Millisecond)

	// Scale out: the new replica starts, then each front restarts with the new list.
	r3 := ts.startRules(t)
	after := []string{r1, r2, r3}
	for _, f := range []*front{a, b} {
		stop(t, f.c)
		ts.startFront(t, f, after)
	}
	ids = append(ids, ts.failedLoginsPhase(t, []*front{a, b}, clients, perPhase/2, 1, base)...)
	ts.exportOTLP(t, b, traversals(clients, base.Add(20*time.Second)))
	ts.settle(t, 2*(clients*perPhase+clients))

	moved := movedClients(clients, before, after)
	for k := range moved {
		id := rules.RoutingTraceID("client.address", k)
		require.Equal(t, r3, ringOwner(after, id[:]), "a key moves only to the new replica")
	}
	t.Logf("keys moved to the new replica: %d of %d", len(moved), clients)
	require.NotEmpty(t, moved, "the test needs keys that move")
	require.Less(t, len(moved), clients, "and keys that stay")
	ts.assertThresholdLoss(t, clients, moved, ids)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Len(ct, alertsOf(t, ts.backendOut, traversalRule), clients+len(moved))
	}, 30*time.Second, 200*time.Millisecond)
	perClient := map[string]int{}
	for _, al := range alertsOf(t, ts.backendOut, traversalRule) {
		perClient[attr(al.LogRecord, "client.address")]++
	}
	for c := range clients {
		k := scaleClient(c)
		if moved[k] {
			assert.Equal(t, 2, perClient[k], "%s moved: its throttle starts again on the new replica", k)
		} else {
			assert.Equal(t, 1, perClient[k], "%s stayed: throttled", k)
		}
	}
}

// A rules replica of three leaves mid-stream (scaled in: the fronts' list
// loses it, and it stops). Only the keys it owned move, to the two that stay;
// what it counted goes with it. As in the scale-out: thirty clients, ten
// failed logins each before and ten after; a moved client does not alert,
// every other exactly once with twenty. A correlation sequence in flight
// (the pods/exec before, the shell and the connection after) is missed for a
// pod whose key moved, and fires once for a pod whose key stayed.
func TestTiersScaleInMovesOnlyTheLeavingReplicasKeys(t *testing.T) {
	ts := newTiers(t)
	r1, r2, r3 := ts.startRules(t), ts.startRules(t), ts.startRules(t)
	before := []string{r1, r2, r3}
	a, b := ts.startFront(t, nil, before), ts.startFront(t, nil, before)
	after := []string{r1, r2}

	// One pod whose key leaves with r3, one whose key stays where it is.
	const podFamily = "k8s.namespace.name,k8s.pod.name"
	var movedPod, stayedPod string
	for i := 0; i < 100 && (movedPod == "" || stayedPod == ""); i++ {
		pod := fmt.Sprintf("web-%d", i)
		id := rules.RoutingTraceID(podFamily, "shop\x00"+pod)
		switch {
		case ringOwner(before, id[:]) == r3 && movedPod == "":
			movedPod = pod
		case ringOwner(before, id[:]) != r3 && stayedPod == "":
			require.Equal(t, ringOwner(before, id[:]), ringOwner(after, id[:]), "a key not on the leaving replica stays")
			stayedPod = pod
		}
	}
	require.NotEmpty(t, movedPod)
	require.NotEmpty(t, stayedPod)

	const clients, perPhase = 30, 10
	base := time.Now()
	ids := ts.failedLoginsPhase(t, []*front{a, b}, clients, perPhase/2, 0, base)
	for _, pod := range []string{movedPod, stayedPod} {
		id := uniqueID("exec-"+pod, 0)
		ids = append(ids, id)
		ts.postAuditTo(t, a, eventList(t, podsExec(id, "shop", pod, base)))
	}
	ts.settle(t, clients*perPhase+4) // and each exec twice: by pod, by audit ID (its throttle)
	require.Empty(t, alertsOf(t, ts.backendOut, failedLoginsRule), "ten of twenty: nothing yet")

	// Scale in: the fronts restart without r3 (as DNS drops it), then it stops.
	for _, f := range []*front{a, b} {
		stop(t, f.c)
		ts.startFront(t, f, after)
	}
	before3 := ts.rulesAccepted()
	gone := ts.stopRules(t, r3)
	ids = append(ids, ts.failedLoginsPhase(t, []*front{a, b}, clients, perPhase/2, 1, base)...)
	for _, pod := range []string{movedPod, stayedPod} {
		ts.exportOTLP(t, b, kernelEvents("shop", pod, base.Add(20*time.Second)))
	}
	ts.settle(t, before3-gone+clients*perPhase+4)

	moved := movedClients(clients, before, after)
	for c := range clients {
		id := rules.RoutingTraceID("client.address", scaleClient(c))
		assert.Equal(t, ringOwner(before, id[:]) == r3, moved[scaleClient(c)], "%s moves if and only if r3 had it", scaleClient(c))
	}
	t.Logf("keys that left with the replica: %d of %d", len(moved), clients)
	require.NotEmpty(t, moved, "the test needs keys that move")
	require.Less(t, len(moved), clients, "and keys that stay")
	ts.assertThresholdLoss(t, clients, moved, ids)

	// The stayed pod's steps meet on one replica, released after the reorder window.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.NotEmpty(ct, alertsForPod(t, ts.backendOut, execShellConnect, stayedPod))
	}, 60*time.Second, 200*time.Millisecond)
	time.Sleep(3 * time.Second)
	assert.Len(t, alertsForPod(t, ts.backendOut, execShellConnect, stayedPod), 1, "the pod that stayed: once")
	assert.Empty(t, alertsForPod(t, ts.backendOut, execShellConnect, movedPod), "the pod that moved: its exec left with r3")
}

// A rules replica goes away before the fronts hear of it (DNS lists it for up
// to the resolver's interval). What a front routes to it meanwhile waits in
// the loadbalancing exporter's in-memory queue for that replica, retried
// against it, and is dropped when the replica leaves the front's list: it is
// not sent to the key's new owner. The events themselves reach the backend
// from the front; the rules tier never counts those copies. A key of the
// replica that stays loses nothing.
func TestTiersCopiesToAGoneReplicaAreLost(t *testing.T) {
	ts := newTiers(t)
	r1, r2 := ts.startRules(t), ts.startRules(t)
	before := []string{r1, r2}
	a, b := ts.startFront(t, nil, before), ts.startFront(t, nil, before)

	const clients, perFront = 30, 10
	onR1 := 0
	for c := range clients {
		id := rules.RoutingTraceID("client.address", scaleClient(c))
		if ringOwner(before, id[:]) == r1 {
			onR1++
		}
	}
	require.NotZero(t, onR1, "the test needs keys on each replica")
	require.Less(t, onR1, clients, "the test needs keys on each replica")

	ts.stopRules(t, r2) // the fronts still list it
	ids := ts.failedLoginsPhase(t, []*front{a, b}, clients, perFront, 0, time.Now())
	ts.settle(t, float64(onR1*2*perFront))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Len(ct, alertsOf(t, ts.backendOut, failedLoginsRule), onR1)
	}, 30*time.Second, 200*time.Millisecond, "the keys on the replica that stays alert")
	accepted := ts.rulesAccepted()

	// The fronts drop r2, as a DNS refresh would. The loss shows only in their
	// logs: the per-replica exporters' metrics are not exported.
	dropped := false
	for _, f := range []*front{a, b} {
		stop(t, f.c)
		for _, line := range strings.Split(f.c.output.String(), "\n") {
			dropped = dropped || strings.Contains(line, "Exporting failed. Dropping data.") && strings.Contains(line, r2)
		}
		ts.startFront(t, f, []string{r1})
	}
	assert.True(t, dropped, "a front logs the copies it drops, with r2's address")
	time.Sleep(5 * time.Second) // a retried copy would reach r1 by now
	assert.Equal(t, accepted, ts.rulesAccepted(), "nothing meant for r2 reaches r1")
	assert.Len(t, alertsOf(t, ts.backendOut, failedLoginsRule), onR1, "r2's keys never counted")
	counts, err := auditCounts(ts.backendOut)
	require.NoError(t, err)
	for _, id := range ids {
		assert.Equal(t, 1, counts[id], "audit event %s reaches the backend once, from the front", id)
	}
}
