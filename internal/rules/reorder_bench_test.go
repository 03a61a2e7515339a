package rules

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// auditRead is an audit event as the k8s_audit receiver writes it, with the
// usual dozen scalar attributes; user names the threshold's key.
func auditRead(user string, resource string) *Event {
	return event("k8s.audit", 0, map[string]any{
		"k8s.audit.id": "5f0c7a2e-6c1d-4b8e-9a51-2f7c0d3e4b91", "k8s.audit.stage": "ResponseComplete",
		"k8s.audit.verb": "get", "k8s.audit.object.resource": resource, "k8s.audit.object.name": "db-password",
		"k8s.namespace.name": "shop", "user.name": user, "k8s.audit.user.groups": []any{"system:authenticated"},
		"client.address": "10.0.4.17", "user_agent.original": "kubectl/v1.36.3 (linux/amd64) kubernetes/abcdef",
		"http.response.status_code": 200, "k8s.audit.authorization.decision": "allow",
	})
}

// BenchmarkReorderBuffer is the reorder buffer's cost per event in a stream
// of 100K events/s of event time (10µs apart), up to 4s out of order, once
// the buffer holds its window's events (1M). secret-read:
// every event is a threshold match, held and copied (the worst case); traffic:
// no stateful rule matches, the event only moves the watermark. arrival-order
// is the same without the buffer (reorder_window: 0).
func BenchmarkReorderBuffer(b *testing.B) {
	set, err := Load([]Source{{Name: "stateful.yaml", Data: []byte(statefulPack)}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const ring = 4096
	for _, kind := range []string{"secret-read", "traffic"} {
		evs := make([]*Event, ring)
		for i := range evs {
			if kind == "traffic" {
				evs[i] = auditRead(fmt.Sprint("user-", i), "configmaps")
			} else {
				evs[i] = auditRead(fmt.Sprint("user-", i), "secrets")
			}
		}
		for _, window := range []time.Duration{0, 10 * time.Second} {
			name := kind + "/arrival-order"
			if window > 0 {
				name = kind + "/reorder-10s"
			}
			b.Run(name, func(b *testing.B) {
				// 1M held events: 10s of 100K/s, so none is taken early.
				e := NewEngine(set, StateConfig{MaxKeys: 1 << 20, ReorderWindow: window, MaxHeld: 1 << 20})
				var dst []Match
				i := 0
				next := func() {
					ev := evs[i%ring]
					jitter := time.Duration(uint64(i)*2654435761%4000) * time.Millisecond
					ev.Time = t0.Add(time.Duration(i)*10*time.Microsecond - jitter)
					dst = e.Evaluate(ev, dst[:0])
					i++
				}
				// Steady state first: the buffer holds a window's events (1M).
				for range int(window / (10 * time.Microsecond)) {
					next()
				}
				b.ReportAllocs()
				for b.Loop() {
					next()
				}
				if late := e.Stats().Late.Load(); late != 0 {
					b.Fatalf("%d events late: the jitter is inside the window", late)
				}
			})
		}
	}
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStateMemory is what stateful rules hold at 1M keys, in bytes per
// key: a threshold key with two matches counted, a sequence key one step in
// (its evidence copied), and an event waiting in the reorder buffer.
func BenchmarkStateMemory(b *testing.B) {
	set, err := Load([]Source{{Name: "stateful.yaml", Data: []byte(statefulPack)}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const keys = 1_000_000
	read := auditRead("", "secrets")
	exec := seqExec(0, "5f0c7a2e-6c1d-4b8e-9a51-2f7c0d3e4b91")
	for _, c := range []struct {
		name   string
		window time.Duration
		feed   func(e *Engine, i int)
	}{
		{"threshold", 0, func(e *Engine, i int) {
			read.Attrs.PutStr("user.name", fmt.Sprint("system:serviceaccount:shop:user-", i))
			e.Evaluate(read, nil)
			e.Evaluate(read, nil)
		}},
		{"sequence", 0, func(e *Engine, i int) {
			exec.Attrs.PutStr("k8s.pod.name", fmt.Sprint("web-", i))
			e.Evaluate(exec, nil)
		}},
		{"held-event", time.Hour, func(e *Engine, i int) {
			read.Attrs.PutStr("user.name", fmt.Sprint("system:serviceaccount:shop:user-", i))
			e.Evaluate(read, nil)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				before := heapAfterGC()
				e := NewEngine(set, StateConfig{MaxKeys: keys, ReorderWindow: c.window, MaxHeld: keys})
				for i := range keys {
					c.feed(e, i)
				}
				after := heapAfterGC()
				if e.Stats().DroppedState.Load() != 0 || e.Stats().ReorderOverflow.Load() != 0 {
					b.Fatal("state overflowed: the figure would be too low")
				}
				b.ReportMetric(float64(after-before)/keys, "bytes/key")
				runtime.KeepAlive(e)
			}
		})
	}
}
