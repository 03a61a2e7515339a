package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The steps of statefulPack's "Exec then shell then connect" in pod prod/web.
func seqExec(at time.Duration, id string) *Event {
	return event("k8s.audit", at, map[string]any{"k8s.audit.object.subresource": "exec",
		"k8s.namespace.name": "prod", "k8s.pod.name": "web", "k8s.audit.id": id})
}

func seqShell(at time.Duration) *Event {
	ev := event("process.exec", at, map[string]any{"process.pid": 42})
	ev.Resource.PutStr("k8s.namespace.name", "prod")
	ev.Resource.PutStr("k8s.pod.name", "web")
	ev.Resource.PutStr("process.executable.name", "sh")
	return ev
}

func seqConnect(at time.Duration) *Event {
	ev := event("network.connect", at, map[string]any{"server.port": 4444, "server.address": "203.0.113.9"})
	ev.Resource.PutStr("k8s.namespace.name", "prod")
	ev.Resource.PutStr("k8s.pod.name", "web")
	return ev
}

// traffic is an event that no stateful rule matches: it only moves event time.
func traffic(at time.Duration) *Event {
	return event("k8s.audit", at, map[string]any{"k8s.audit.verb": "get", "k8s.audit.object.resource": "pods"})
}

func feed(e *Engine, evs ...*Event) []Match {
	var out []Match
	for _, ev := range evs {
		out = e.Evaluate(ev, out)
	}
	return out
}

func stepTimes(m Match) []time.Duration {
	var out []time.Duration
	for _, ev := range m.Evidence {
		out = append(out, ev.Time.Sub(t0))
	}
	return out
}

// A repeated first step restarts the window: the chain alerted on is the
// latest, and a chain that is too long from the first exec still fires from
// the second.
func TestSequenceRepeatedFirstStepRestarts(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{})
	ms := feed(e, seqExec(0, "first"), seqExec(4*time.Minute, "second"),
		seqShell(4*time.Minute+5*time.Second), seqConnect(5*time.Minute+10*time.Second))
	require.Len(t, ms, 1, "within 5m of the second exec")
	assert.Equal(t, []time.Duration{4 * time.Minute, 4*time.Minute + 5*time.Second, 5*time.Minute + 10*time.Second}, stepTimes(ms[0]))
	id, _ := ms[0].Evidence[0].Attrs.Get("k8s.audit.id")
	assert.Equal(t, "second", id.Str(), "the second exec is the evidence")

	// A first step after the shell starts over: the earlier shell is not reused.
	e = NewEngine(load(t, statefulPack), StateConfig{})
	assert.Empty(t, feed(e, seqExec(0, "a"), seqShell(time.Second), seqExec(2*time.Second, "b"), seqConnect(3*time.Second)))
	ms = feed(e, seqShell(4*time.Second), seqConnect(5*time.Second))
	require.Len(t, ms, 1)
	assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second}, stepTimes(ms[0]))
}

// A sequence's last step may come exactly `within` after its first; one
// nanosecond later the window has expired.
func TestSequenceWindowBoundary(t *testing.T) {
	for _, c := range []struct {
		last time.Duration
		want int
	}{{5 * time.Minute, 1}, {5*time.Minute + 1, 0}} {
		e := NewEngine(load(t, statefulPack), StateConfig{})
		ms := feed(e, seqExec(0, "x"), seqShell(time.Minute), seqConnect(c.last))
		assert.Len(t, ms, c.want, "connect at %v", c.last)
	}
	// The shell one nanosecond past the window cannot advance the old chain.
	e := NewEngine(load(t, statefulPack), StateConfig{})
	assert.Empty(t, feed(e, seqExec(0, "x"), seqShell(5*time.Minute+1), seqConnect(5*time.Minute+2)))
}

// A threshold counts matches up to exactly `window` apart; one nanosecond
// more and the first has left the window.
func TestThresholdWindowBoundary(t *testing.T) {
	for _, c := range []struct {
		last time.Duration
		want int
	}{{time.Minute, 1}, {time.Minute + 1, 0}} {
		e := NewEngine(load(t, statefulPack), StateConfig{})
		var ms []Match
		for _, at := range []time.Duration{0, 30 * time.Second, c.last} {
			ms = e.Evaluate(event("k8s.audit", at, map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "alice"}), ms)
		}
		assert.Len(t, ms, c.want, "third read at %v", c.last)
	}
}

func reorderEngine(t *testing.T, cfg StateConfig) *Engine {
	if cfg.ReorderWindow == 0 {
		cfg.ReorderWindow = 10 * time.Second
	}
	return NewEngine(load(t, statefulPack), cfg)
}

// A step that arrives before the step it follows waits in the reorder
// buffer; the audit exec arriving 4s of event time after the kernel events
// still completes the sequence once the watermark passes them.
func TestReorderPutsStepsInEventTimeOrder(t *testing.T) {
	e := reorderEngine(t, StateConfig{})
	assert.Empty(t, feed(e, seqShell(time.Second), seqConnect(2*time.Second), traffic(6*time.Second), seqExec(0, "x")),
		"held until the watermark (newest - 10s) passes them")
	assert.Empty(t, feed(e, traffic(11*time.Second)), "the watermark (1s) passed the exec and the shell only")
	ms := feed(e, traffic(12*time.Second))
	require.Len(t, ms, 1)
	assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, stepTimes(ms[0]))
	require.NotNil(t, ms[0].Event, "released: the match names its own event")
	assert.Equal(t, "network.connect", ms[0].Event.Name)
	pod, _ := ms[0].Resource.Get("k8s.pod.name")
	assert.Equal(t, "web", pod.Str(), "and its resource")
	assert.Zero(t, e.Stats().Late.Load())
}

// An event older than the watermark is late: the stateful rules skip it and
// count it; the kernel steps were already taken, without an exec before them.
func TestReorderLateEvent(t *testing.T) {
	e := reorderEngine(t, StateConfig{})
	assert.Empty(t, feed(e, seqShell(time.Second), seqConnect(2*time.Second), traffic(32*time.Second), seqExec(0, "x")))
	assert.Equal(t, int64(1), e.Stats().Late.Load())
	assert.Empty(t, e.Drain(), "nothing held")

	// Exactly at the watermark is not late.
	e = reorderEngine(t, StateConfig{})
	feed(e, traffic(20*time.Second), seqExec(10*time.Second, "x"))
	assert.Zero(t, e.Stats().Late.Load())
	assert.Empty(t, e.reorder.held, "and taken at once: nothing earlier can come")
	ms := feed(e, seqShell(11*time.Second), seqConnect(12*time.Second), traffic(22*time.Second))
	require.Len(t, ms, 1, "the exec at the watermark started the chain")
}

// A quiet stream does not keep events held: once the newest event time has
// not moved for a window of wall time, Flush releases everything.
func TestReorderQuietStreamFlush(t *testing.T) {
	e := reorderEngine(t, StateConfig{})
	assert.Empty(t, feed(e, seqShell(time.Second), seqConnect(2*time.Second), seqExec(0, "x")))
	wall := time.Now()
	assert.Empty(t, e.Flush(wall), "the first flush notes the newest time")
	assert.Empty(t, e.ReleaseQuiet(wall.Add(9*time.Second)))
	ms := e.ReleaseQuiet(wall.Add(10 * time.Second))
	require.Len(t, ms, 1)
	assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, stepTimes(ms[0]))
	assert.NotNil(t, ms[0].Event)

	feed(e, seqExec(time.Second, "y"))
	assert.Equal(t, int64(1), e.Stats().Late.Load(), "what the flush released is behind the watermark")
}

// Drain (a rule reload, shutdown) releases what is held, in order.
func TestReorderDrainReleases(t *testing.T) {
	e := reorderEngine(t, StateConfig{})
	feed(e, seqConnect(2*time.Second), seqShell(time.Second), seqExec(0, "x"))
	ms := e.Drain()
	require.Len(t, ms, 1)
	assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, stepTimes(ms[0]))
	require.Len(t, feed(e, seqExec(0, "y"), seqShell(time.Second), seqConnect(2*time.Second)), 1,
		"a drained engine takes what still comes in arrival order")
}

// Past MaxHeld the earliest held event is taken at once, and counted.
func TestReorderBufferIsBounded(t *testing.T) {
	e := reorderEngine(t, StateConfig{MaxHeld: 2})
	for i := range 5 {
		e.Evaluate(event("k8s.audit", time.Duration(i)*time.Millisecond,
			map[string]any{"k8s.audit.object.resource": "secrets", "user.name": fmt.Sprint("u", i)}), nil)
	}
	assert.Equal(t, int64(3), e.Stats().ReorderOverflow.Load())
	assert.Len(t, e.reorder.held, 2)
}

// Thresholds count in event time too: reads delivered out of order within
// the reorder window count as if in order.
func TestReorderThreshold(t *testing.T) {
	e := reorderEngine(t, StateConfig{})
	read := func(at time.Duration) *Event {
		return event("k8s.audit", at, map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "alice"})
	}
	assert.Empty(t, feed(e, read(70*time.Second), read(65*time.Second), read(10*time.Second)), "10s is late: the watermark is at 60s")
	assert.Equal(t, int64(1), e.Stats().Late.Load())
	ms := feed(e, read(62*time.Second), traffic(90*time.Second))
	require.Len(t, ms, 1, "62s, 65s, 70s in one minute")
	assert.Equal(t, 3, ms[0].Count)
	assert.Equal(t, 70*time.Second, ms[0].Event.Time.Sub(t0), "the third in event time raises it")
}

// A late event is still evaluated at once by stateless rules; only the
// stateful ones skip it.
func TestLateEventStillMatchesStatelessRules(t *testing.T) {
	e := NewEngine(load(t, statefulPack, `
- rule: Exec into a pod
  events: [k8s.audit]
  condition: k8s.audit.object.subresource == "exec"
  severity: low
  output: exec
`), StateConfig{ReorderWindow: 10 * time.Second})
	feed(e, traffic(time.Minute))
	ms := feed(e, seqExec(0, "late"))
	assert.Equal(t, []string{"Exec into a pod"}, names(ms), "alerted on arrival")
	assert.Nil(t, ms[0].Event, "about the event evaluated")
	assert.Equal(t, int64(1), e.Stats().Late.Load(), "and late for the sequence")

	ms = feed(e, seqExec(55*time.Second, "on time"))
	assert.Equal(t, []string{"Exec into a pod"}, names(ms), "a held event's stateless rules do not wait either")
	assert.Equal(t, int64(1), e.Stats().Late.Load())
}

// A held event comes back with every scalar attribute of each type, and
// without its maps (request objects are not in alerts).
func TestHeldEventKeepsScalars(t *testing.T) {
	ev := event("k8s.audit", time.Second, map[string]any{"s": "x", "i": 7, "b": true, "f": 1.5,
		"l": []any{"a", "b"}, "m": map[string]any{"k": "v"}})
	ev.Attrs.PutEmptyBytes("y").FromRaw([]byte{1, 2})
	ev.Resource.PutStr("k8s.pod.name", "web")
	ev.Body = pcommon.NewValueStr("body")
	got := hold(ev, nil).event()
	assert.Equal(t, map[string]any{"s": "x", "i": int64(7), "b": true, "f": 1.5, "l": []any{"a", "b"}, "y": []byte{1, 2}}, got.Attrs.AsRaw())
	assert.Equal(t, map[string]any{"k8s.pod.name": "web"}, got.Resource.AsRaw())
	assert.Equal(t, "body", got.Body.Str())
	assert.Equal(t, ev.Time, got.Time)
	assert.Equal(t, "k8s.audit", got.Name)
	assert.Equal(t, pcommon.Value{}, hold(event("x", 0, nil), nil).event().Body, "no body, as an event without one")
}

// The held events come out in time order, ties in arrival order.
func TestHeldHeapOrder(t *testing.T) {
	var h heldHeap
	var seq uint64
	for i := range 1000 {
		seq++
		ts := int64(uint64(i) * 2654435761 % 97) // many ties
		h.push(heldEntry{t: ts, seq: seq, ev: &heldEvent{t: ts, seq: seq}})
	}
	var last *heldEvent
	for len(h) > 0 {
		ev := h.pop()
		if last != nil {
			require.True(t, last.t < ev.t || last.t == ev.t && last.seq < ev.seq, "%d/%d after %d/%d", ev.t, ev.seq, last.t, last.seq)
		}
		last = ev
	}
	assert.Equal(t, int64(96), last.t)
}
