package rules

import (
	"math"
	"sync/atomic"
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

// heldEvent is an event waiting in the reorder buffer with its hits. Its
// attributes are kept flat (frozen) and made into an Event again only when
// an alert or a sequence's evidence needs them: most held events only move
// a count or fail to, and a flat copy is a fraction of the objects the
// collector's maps take, which is what the garbage collector walks.
type heldEvent struct {
	name, severity string
	time           time.Time
	body           pcommon.Value // zero when the event has none
	attrs, res     []frozenAttr
	others         []pcommon.Value // lists and bytes, copied: frozenAttr.num indexes them
	thawed         *Event

	hits []hit
	t    int64  // time in ns
	seq  uint64 // arrival order: ties in time keep it
}

// frozenAttr is one scalar attribute of a held event. Strings are shared,
// not cloned: a held event lives a reorder window, and a clone each would be
// most of its cost; the batch's strings are immutable.
type frozenAttr struct {
	key  string
	str  string
	num  int64 // an int, a bool (0/1), a double's bits, an index into others
	kind pcommon.ValueType
}

// hold makes the held copy of ev.
func hold(ev *Event, hits []hit) *heldEvent {
	h := &heldEvent{name: ev.Name, severity: ev.Severity, time: ev.Time, t: ev.Time.UnixNano(), hits: heldHits(hits)}
	h.attrs = h.freeze(ev.Attrs)
	h.res = h.freeze(ev.Resource)
	if ev.Body != (pcommon.Value{}) && ev.Body.Type() != pcommon.ValueTypeEmpty {
		h.body = pcommon.NewValueEmpty()
		ev.Body.CopyTo(h.body)
	}
	return h
}

func (h *heldEvent) freeze(m pcommon.Map) []frozenAttr {
	if m == (pcommon.Map{}) || m.Len() == 0 {
		return nil
	}
	out := make([]frozenAttr, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		a := frozenAttr{key: k, kind: v.Type()}
		switch a.kind {
		case pcommon.ValueTypeMap:
			return true // request objects: not in alerts, too big to hold
		case pcommon.ValueTypeStr:
			a.str = v.Str()
		case pcommon.ValueTypeInt:
			a.num = v.Int()
		case pcommon.ValueTypeBool:
			if v.Bool() {
				a.num = 1
			}
		case pcommon.ValueTypeDouble:
			a.num = int64(math.Float64bits(v.Double()))
		default:
			a.num = int64(len(h.others))
			h.others = append(h.others, pcommon.NewValueEmpty())
			v.CopyTo(h.others[a.num])
		}
		out = append(out, a)
		return true
	})
	return out
}

func (h *heldEvent) thaw(attrs []frozenAttr) pcommon.Map {
	m := pcommon.NewMap()
	m.EnsureCapacity(len(attrs))
	for _, a := range attrs {
		switch a.kind {
		case pcommon.ValueTypeStr:
			m.PutStr(a.key, a.str)
		case pcommon.ValueTypeInt:
			m.PutInt(a.key, a.num)
		case pcommon.ValueTypeBool:
			m.PutBool(a.key, a.num == 1)
		case pcommon.ValueTypeDouble:
			m.PutDouble(a.key, math.Float64frombits(uint64(a.num)))
		default:
			h.others[a.num].CopyTo(m.PutEmpty(a.key))
		}
	}
	return m
}

// event is the held event as an Event, made once.
func (h *heldEvent) event() *Event {
	if h.thawed == nil {
		h.thawed = &Event{Name: h.name, Severity: h.severity, Time: h.time, Body: h.body,
			Attrs: h.thaw(h.attrs), Resource: h.thaw(h.res)}
	}
	return h.thawed
}

// eventSrc is the event a hit came from: the one in hand, or a held one.
type eventSrc struct {
	live *Event
	held *heldEvent
}

func (s eventSrc) time() time.Time {
	if s.live != nil {
		return s.live.Time
	}
	return s.held.time
}

func (s eventSrc) event() *Event {
	if s.live != nil {
		return s.live
	}
	return s.held.event()
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

	// The newest event time seen and the earliest held (MaxInt64: none) are
	// read without the engine's lock: an event that matched no stateful rule
	// takes the lock only when it lets a held event go.
	maxSeen   atomic.Int64
	earliest  atomic.Int64
	watermark int64 // everything at or before it has been released; under the lock

	// quiet detection, by Flush: maxSeen at the last Flush and since when
	checkedMax int64
	quietSince time.Time
	quietKnown bool
}

func newReorderBuffer(window time.Duration, maxHeld int) *reorderBuffer {
	b := &reorderBuffer{window: int64(window), maxHeld: maxHeld, watermark: math.MinInt64}
	b.maxSeen.Store(math.MinInt64)
	b.earliest.Store(math.MaxInt64)
	return b
}

// observe raises the newest time seen; no lock.
func (b *reorderBuffer) observe(t int64) {
	for {
		cur := b.maxSeen.Load()
		if t <= cur || b.maxSeen.CompareAndSwap(cur, t) {
			return
		}
	}
}

// due reports, without the lock, whether the watermark would let the
// earliest held event go.
func (b *reorderBuffer) due() bool {
	ms := b.maxSeen.Load()
	return ms != math.MinInt64 && ms-b.window >= b.earliest.Load()
}

// advance moves the watermark up to the newest time seen less the window;
// under the lock.
func (b *reorderBuffer) advance() {
	if ms := b.maxSeen.Load(); ms != math.MinInt64 && ms-b.window > b.watermark {
		b.watermark = ms - b.window
	}
}

// noteEarliest publishes the earliest held time after the heap changed.
func (b *reorderBuffer) noteEarliest() {
	if len(b.held) == 0 {
		b.earliest.Store(math.MaxInt64)
	} else {
		b.earliest.Store(b.held[0].t)
	}
}

// late reports whether an event at t comes after the watermark passed it.
func (b *reorderBuffer) late(t int64) bool { return t < b.watermark }

func (b *reorderBuffer) push(h *heldEvent) {
	b.seq++
	h.seq = b.seq
	b.held.push(heldEntry{t: h.t, seq: h.seq, ev: h})
	b.noteEarliest()
}

// overflow gives the earliest held event when the buffer is over its bound;
// the watermark moves to it, so the order given back stays event-time order.
func (b *reorderBuffer) overflow() *heldEvent {
	if len(b.held) <= b.maxHeld {
		return nil
	}
	h := b.held.pop()
	b.noteEarliest()
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
	h := b.held.pop()
	b.noteEarliest()
	return h
}

// quiet moves the watermark to the newest event time seen when that has not
// changed for a window of wall time since an earlier Flush noticed it.
func (b *reorderBuffer) quiet(now time.Time) {
	ms := b.maxSeen.Load()
	if !b.quietKnown || ms != b.checkedMax {
		b.checkedMax, b.quietSince, b.quietKnown = ms, now, true
		return
	}
	if now.Sub(b.quietSince) >= time.Duration(b.window) && ms > b.watermark {
		b.watermark = ms
	}
}

// releaseAll moves the watermark past every held event.
func (b *reorderBuffer) releaseAll() { b.watermark = math.MaxInt64 }

// heldHeap orders held events by time, then arrival. Entries carry their
// sort key so that a million-entry heap compares without chasing pointers.
type heldHeap []heldEntry

type heldEntry struct {
	t   int64
	seq uint64
	ev  *heldEvent
}

func (h heldHeap) less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].seq < h[j].seq
}

func (h *heldHeap) push(e heldEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *heldHeap) pop() *heldEvent {
	s := *h
	top := s[0].ev
	last := len(s) - 1
	s[0] = s[last]
	s[last] = heldEntry{}
	s = s[:last]
	if last == 0 && cap(s) > 1024 {
		s = nil // a burst's array goes with it
	}
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s.less(l, least) {
			least = l
		}
		if r < len(s) && s.less(r, least) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}

// heldHits copies an event's hits off the activation's scratch.
func heldHits(hits []hit) []hit { return append([]hit(nil), hits...) }
