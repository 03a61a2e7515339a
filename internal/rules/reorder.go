package rules

import (
	"container/heap"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// DefaultMaxHeld bounds the reorder buffer: the events held for stateful
// rules, each a copy of its scalar attributes (about 1 KiB).
const DefaultMaxHeld = 100000

// hit is what one event did to one stateful rule: matched a threshold's
// condition, or some of a sequence's steps (bit i: step i).
type hit struct {
	rule  *Rule
	steps uint64
	key   string
	vals  []string
}

// heldEvent is an event waiting in the reorder buffer with its hits.
type heldEvent struct {
	ev   *Event
	hits []hit
	t    int64  // ev.Time in ns
	seq  uint64 // arrival order: ties in time keep it
}

// reorderBuffer holds the stateful rules' hits until the watermark passes
// them, then gives them back in event-time order.
//
// The watermark is the newest event time seen minus the window: an event
// that arrives up to the window after a newer one is put back in its place.
// An event older than the watermark is late. When the newest event time has
// not moved for a window of wall time (a quiet stream), Flush moves the
// watermark to it, so nothing waits on traffic that does not come.
type reorderBuffer struct {
	window  int64
	maxHeld int
	held    heldHeap
	seq     uint64

	maxSeen   int64 // newest event time seen
	watermark int64 // everything at or before it has been released

	// quiet detection, by Flush: maxSeen at the last Flush and since when
	checkedMax int64
	quietSince time.Time
	quietKnown bool
}

func newReorderBuffer(window time.Duration, maxHeld int) *reorderBuffer {
	return &reorderBuffer{window: int64(window), maxHeld: maxHeld, maxSeen: math.MinInt64, watermark: math.MinInt64}
}

// observe raises the newest time seen and the watermark with it.
func (b *reorderBuffer) observe(t int64) {
	if t <= b.maxSeen {
		return
	}
	b.maxSeen = t
	if wm := t - b.window; wm > b.watermark {
		b.watermark = wm
	}
}

// late reports whether an event at t comes after the watermark passed it.
func (b *reorderBuffer) late(t int64) bool { return t < b.watermark }

func (b *reorderBuffer) push(h *heldEvent) {
	b.seq++
	h.seq = b.seq
	heap.Push(&b.held, h)
}

// overflow gives the earliest held event when the buffer is over its bound;
// the watermark moves to it, so the order given back stays event-time order.
func (b *reorderBuffer) overflow() *heldEvent {
	if len(b.held) <= b.maxHeld {
		return nil
	}
	h := heap.Pop(&b.held).(*heldEvent)
	if h.t > b.watermark {
		b.watermark = h.t
	}
	return h
}

// next gives the earliest held event if the watermark has passed it.
func (b *reorderBuffer) next() *heldEvent {
	if len(b.held) == 0 || b.held[0].t > b.watermark {
		return nil
	}
	return heap.Pop(&b.held).(*heldEvent)
}

// quiet moves the watermark to the newest event time seen when that has not
// changed for a window of wall time since an earlier Flush noticed it.
func (b *reorderBuffer) quiet(now time.Time) {
	if !b.quietKnown || b.maxSeen != b.checkedMax {
		b.checkedMax, b.quietSince, b.quietKnown = b.maxSeen, now, true
		return
	}
	if now.Sub(b.quietSince) >= time.Duration(b.window) && b.maxSeen > b.watermark {
		b.watermark = b.maxSeen
	}
}

// releaseAll moves the watermark past every held event.
func (b *reorderBuffer) releaseAll() { b.watermark = math.MaxInt64 }

// heldHeap orders held events by time, then arrival.
type heldHeap []*heldEvent

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].seq < h[j].seq
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(*heldEvent)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// snapshot copies what a held event's alert needs (its scalar attributes,
// resource, body) so that the batch it came in can be passed on and changed
// downstream. Strings are shared, not cloned as long-lived state's are: a
// held event lives a reorder window, and a clone each is most of its cost.
func snapshot(ev *Event) *Event {
	s := &Event{Name: ev.Name, Severity: ev.Severity, Time: ev.Time, Attrs: pcommon.NewMap(), Resource: pcommon.NewMap()}
	shareScalars(ev.Attrs, s.Attrs)
	if ev.Resource != (pcommon.Map{}) {
		shareScalars(ev.Resource, s.Resource)
	}
	if ev.Body != (pcommon.Value{}) {
		s.Body = pcommon.NewValueEmpty()
		ev.Body.CopyTo(s.Body)
	}
	return s
}

// shareScalars copies every attribute that is not a map, sharing strings.
func shareScalars(src, dst pcommon.Map) {
	dst.EnsureCapacity(src.Len())
	src.Range(func(k string, v pcommon.Value) bool {
		switch v.Type() {
		case pcommon.ValueTypeMap:
		case pcommon.ValueTypeStr:
			dst.PutStr(k, v.Str())
		default:
			v.CopyTo(dst.PutEmpty(k))
		}
		return true
	})
}

// heldHits copies an event's hits off the activation's scratch; the key is
// cloned, since it may become a state's key for long.
func heldHits(hits []hit) []hit {
	out := make([]hit, len(hits))
	for i, h := range hits {
		out[i] = hit{rule: h.rule, steps: h.steps, key: strings.Clone(h.key), vals: h.vals}
	}
	return out
}
