package rules

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// StateConfig bounds what thresholds, sequences and throttles remember.
type StateConfig struct {
	// MaxKeys is the most keys (users, pods, ...) one stateful rule tracks;
	// the least recently seen key is forgotten first and counted as dropped.
	MaxKeys int
	// ReorderWindow is how long, in event time, thresholds and sequences
	// wait for an earlier event that arrives late; 0 takes events in
	// arrival order (see reorder.go).
	ReorderWindow time.Duration
	// MaxHeld bounds the events waiting in the reorder buffer; past it the
	// earliest is taken at once and counted (Stats.ReorderOverflow).
	MaxHeld int
}

// DefaultMaxKeys bounds one rule's state to a few MiB at most.
const DefaultMaxKeys = 10000

// Match is one alert to emit.
type Match struct {
	Rule *Rule
	// Count is how many matches the alert stands for: the threshold's count,
	// or for a throttle summary the matches suppressed in the period.
	Count int
	// Summary marks a throttle summary: no new event, the count of suppressed ones.
	Summary bool
	// Key is the values of the rule's by-attributes, for stateful rules.
	Key []string
	// Evidence holds a sequence's steps, in order.
	Evidence []Evidence
	// Resource is, for a throttle summary, the resource attributes of the
	// first match it stands for (the pod, node or process), and for a match
	// released by the reorder buffer its event's; a copy.
	Resource pcommon.Map
	// Event, when not nil, is the event that raised the match, held in the
	// reorder buffer: not the one being evaluated. Write the alert from it.
	Event *Event
}

// Evidence is what a sequence step matched.
type Evidence struct {
	Step      string
	EventName string
	Time      time.Time
	Attrs     pcommon.Map // the step event's scalar attributes, copied
}

// Stats are the engine's counters since it started.
type Stats struct {
	Evaluated    atomic.Int64 // events evaluated
	Errors       atomic.Int64 // conditions that failed on an event (cost limit, type errors)
	DroppedState atomic.Int64 // keys forgotten because a rule's state was full
	// Late counts events that matched a threshold or sequence step but came
	// after the reorder window had passed their time: stateful rules skip them.
	Late atomic.Int64
	// ReorderOverflow counts held events taken early because the reorder
	// buffer was full (StateConfig.MaxHeld).
	ReorderOverflow atomic.Int64
}

// Engine evaluates events against a Set and keeps the state of stateful rules.
// It is safe for concurrent use.
type Engine struct {
	set         *Set
	cfg         StateConfig
	stats       *Stats
	activations sync.Pool

	mu         sync.Mutex
	drained    bool           // Drain ran: throttles no longer suppress, nothing is held
	reorder    *reorderBuffer // nil: arrival order
	thresholds map[int]*lru.Cache[string, *window]
	throttles  map[int]*lru.Cache[string, *throttleState]
	sequences  map[int]*lru.Cache[string, *sequenceState]
	// RuleMatches counts matches per rule (before throttling), by Rule index.
	matches []atomic.Int64
}

// NewEngine starts an engine over set.
func NewEngine(set *Set, cfg StateConfig) *Engine {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	e := &Engine{set: set, cfg: cfg, stats: &Stats{},
		thresholds: map[int]*lru.Cache[string, *window]{},
		throttles:  map[int]*lru.Cache[string, *throttleState]{},
		sequences:  map[int]*lru.Cache[string, *sequenceState]{},
		matches:    make([]atomic.Int64, len(set.Rules)),
	}
	if cfg.ReorderWindow > 0 {
		e.reorder = newReorderBuffer(cfg.ReorderWindow, cfg.MaxHeld)
	}
	e.activations.New = func() any { return &activation{} }
	return e
}

// Set returns the rules the engine runs.
func (e *Engine) Set() *Set { return e.set }

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return e.stats }

// RuleMatches returns how many events matched rule r.
func (e *Engine) RuleMatches(r *Rule) int64 { return e.matches[r.index].Load() }

// Evaluate runs every rule that applies to the event and returns the alerts to
// emit, appended to dst. Only rules listing the event's name are evaluated.
func (e *Engine) Evaluate(ev *Event, dst []Match) []Match {
	ix, steps := e.set.rulesFor(ev.Name)
	if ix == nil && len(steps) == 0 {
		return dst
	}
	e.stats.Evaluated.Add(1)
	act := e.activations.Get().(*activation)
	act.reset(e.set, ev)
	defer e.activations.Put(act)
	var rules []*Rule
	if ix != nil {
		rules = ix.candidates(act)
	}

	hits := act.hits[:0]
	for _, r := range rules {
		if ev.KeyBy != "" && r.keyBy != ev.KeyBy {
			continue
		}
		if !e.eval(&r.cond, act) {
			continue
		}
		e.matches[r.index].Add(1)
		switch {
		case r.Threshold != nil:
			if k, vals, ok := key(ev, r.Threshold.By); ok {
				hits = append(hits, hit{rule: r, key: k, vals: vals})
			}
		case r.Throttle != nil:
			dst = e.throttle(r, ev, dst)
		default:
			dst = append(dst, Match{Rule: r, Count: 1})
		}
	}
	if len(steps) > 0 {
		hits = e.sequenceHits(steps, act, ev, hits)
	}
	act.hits = hits
	if e.reorder != nil {
		return e.reordered(ev, hits, dst)
	}
	if len(hits) == 0 {
		return dst
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range hits {
		dst = e.apply(h, eventSrc{live: ev}, dst)
	}
	return dst
}

// reordered holds an event's hits until the watermark passes its time, and
// applies whatever the watermark released, in event-time order. An event
// the watermark had passed already is late: its hits are dropped.
func (e *Engine) reordered(ev *Event, hits []hit, dst []Match) []Match {
	b := e.reorder
	t := ev.Time.UnixNano()
	b.observe(t)
	if len(hits) == 0 && !b.due() {
		return dst
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.drained { // a batch still under way on a replaced engine: nobody flushes it again
		for _, h := range hits {
			dst = e.apply(h, eventSrc{live: ev}, dst)
		}
		return dst
	}
	b.advance()
	if len(hits) > 0 {
		switch {
		case b.late(t):
			e.stats.Late.Add(1)
		case t == b.watermark:
			// Nothing held is earlier (those are released), and nothing
			// earlier may come (it would be late): no need to wait.
			dst = e.release(dst)
			for _, h := range hits {
				dst = e.apply(h, eventSrc{live: ev}, dst)
			}
		default:
			b.push(hold(ev, hits))
			if h := b.overflow(); h != nil {
				e.stats.ReorderOverflow.Add(1)
				dst = e.applyHeld(h, dst)
			}
		}
	}
	return e.release(dst)
}

// release applies the held events the watermark has passed, earliest first.
func (e *Engine) release(dst []Match) []Match {
	for h := e.reorder.next(); h != nil; h = e.reorder.next() {
		dst = e.applyHeld(h, dst)
	}
	return dst
}

func (e *Engine) applyHeld(h *heldEvent, dst []Match) []Match {
	for _, x := range h.hits {
		dst = e.apply(x, eventSrc{held: h}, dst)
	}
	return dst
}

// apply moves a stateful rule's state by one hit; e.mu is held. A match from
// a held event names it (Match.Event), since it is not the one evaluated.
func (e *Engine) apply(h hit, src eventSrc, dst []Match) []Match {
	n := len(dst)
	if h.rule.Threshold != nil {
		dst = e.threshold(h, src.time(), dst)
	} else {
		dst = e.sequence(h, src, dst)
	}
	if src.held != nil {
		for i := n; i < len(dst); i++ {
			ev := src.event()
			dst[i].Event, dst[i].Resource = ev, ev.Resource
		}
	}
	return dst
}

// eval runs one condition; an error counts and is no match.
func (e *Engine) eval(cond *condition, act *activation) bool {
	ok, err := cond.eval(act)
	if err != nil {
		e.stats.Errors.Add(1)
		return false
	}
	return ok
}

// key joins the values of the by-attributes; ok is false when one is absent,
// since events without the key cannot be counted or joined together.
func key(ev *Event, by []string) (string, []string, bool) {
	vals := make([]string, len(by))
	for i, name := range by {
		v, ok := ev.lookup(name)
		if !ok || v.AsString() == "" {
			return "", nil, false
		}
		vals[i] = v.AsString()
	}
	return strings.Join(vals, "\x00"), vals, true
}

// window holds the times of a key's recent matches, at most Count of them.
type window struct{ times []time.Time }

// threshold counts a match; e.mu is held. A match exactly a window before
// this one still counts: the window is closed at both ends.
func (e *Engine) threshold(h hit, at time.Time, dst []Match) []Match {
	r, k, vals := h.rule, h.key, h.vals
	cache := stateFor(e, e.thresholds, r)
	w, _ := cache.Get(k)
	if w == nil {
		w = &window{}
		addKey(e, cache, k, w)
	}
	cutoff := at.Add(-r.Threshold.Window)
	kept := w.times[:0]
	for _, t := range w.times {
		if !t.Before(cutoff) {
			kept = append(kept, t)
		}
	}
	w.times = append(kept, at)
	if len(w.times) < r.Threshold.Count {
		return dst
	}
	w.times = w.times[:0] // the next alert needs Count new matches
	return append(dst, Match{Rule: r, Count: r.Threshold.Count, Key: vals})
}

// throttleState is one key's throttling period.
type throttleState struct {
	start      time.Time
	suppressed int
	key        []string
	resource   pcommon.Map // the first suppressed event's, for the summary
}

// summary is the alert for the matches suppressed in st's period.
func (st *throttleState) summary(r *Rule) Match {
	return Match{Rule: r, Count: st.suppressed, Summary: true, Key: st.key, Resource: st.resource}
}

func (e *Engine) throttle(r *Rule, ev *Event, dst []Match) []Match {
	k, vals, ok := key(ev, r.Throttle.By)
	if !ok {
		return append(dst, Match{Rule: r, Count: 1})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.drained { // nobody would report what is suppressed now
		return append(dst, Match{Rule: r, Count: 1, Key: vals})
	}
	cache := stateFor(e, e.throttles, r)
	st, _ := cache.Get(k)
	if st != nil && ev.Time.Sub(st.start) < r.Throttle.Period {
		if st.suppressed == 0 {
			st.resource = pcommon.NewMap()
			if ev.Resource != (pcommon.Map{}) {
				copyScalars(ev.Resource, st.resource)
			}
		}
		st.suppressed++
		return dst
	}
	if st != nil && st.suppressed > 0 {
		dst = append(dst, st.summary(r))
	}
	addKey(e, cache, k, &throttleState{start: ev.Time, key: vals})
	return append(dst, Match{Rule: r, Count: 1, Key: vals})
}

// ReleaseQuiet returns the matches of held events that a quiet stream lets
// go: called often (a tenth of the reorder window), it bounds how long a
// stateful alert waits when no newer event comes (see reorderBuffer).
func (e *Engine) ReleaseQuiet(now time.Time) []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.releaseQuiet(now, nil)
}

func (e *Engine) releaseQuiet(now time.Time, out []Match) []Match {
	if e.reorder != nil && !e.drained {
		e.reorder.advance()
		e.reorder.quiet(now)
		out = e.release(out)
	}
	return out
}

// Flush returns the summaries of throttling periods that ended by now, so that
// suppressed matches are reported even when no later match comes, and what
// ReleaseQuiet would.
func (e *Engine) Flush(now time.Time) []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.releaseQuiet(now, nil)
	for idx, cache := range e.throttles {
		r := e.set.Rules[idx]
		for _, k := range cache.Keys() {
			st, ok := cache.Peek(k)
			if !ok || now.Sub(st.start) < r.Throttle.Period {
				continue
			}
			if st.suppressed > 0 {
				out = append(out, st.summary(r))
			}
			cache.Remove(k)
		}
	}
	return out
}

// Drain returns the summaries of every throttling period, ended or not, for
// an engine being replaced (a rule reload). Matches it meets afterwards, from
// batches that were under way, are not throttled: they would never be
// reported. Events the reorder buffer holds are released first, in order,
// with the matches they complete; later ones are taken in arrival order.
func (e *Engine) Drain() []Match {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Match
	if e.reorder != nil && !e.drained {
		e.reorder.releaseAll()
		out = e.release(out)
	}
	e.drained = true
	for idx, cache := range e.throttles {
		for _, st := range cache.Values() {
			if st.suppressed > 0 {
				out = append(out, st.summary(e.set.Rules[idx]))
			}
		}
		cache.Purge()
	}
	return out
}

// sequenceState is how far one key has come through a sequence.
type sequenceState struct {
	next     int
	start    time.Time
	evidence []Evidence
}

// sequenceHits finds the steps of each sequence rule the event matches.
func (e *Engine) sequenceHits(steps []stepRef, act *activation, ev *Event, hits []hit) []hit {
	for _, ref := range steps {
		r := ref.rule
		if ev.KeyBy != "" && r.keyBy != ev.KeyBy {
			continue
		}
		if !e.eval(&r.Sequence.Steps[ref.step].cond, act) {
			continue
		}
		i := 0
		for i < len(hits) && hits[i].rule != r {
			i++
		}
		if i == len(hits) {
			k, vals, ok := key(ev, r.Sequence.By)
			if !ok {
				continue
			}
			hits = append(hits, hit{rule: r, key: k, vals: vals})
		}
		hits[i].steps |= 1 << ref.step
	}
	return hits
}

// sequence moves one key through a sequence; e.mu is held. Later steps are
// tried first, and an event takes at most one step: it must not both start
// and advance a sequence. A first step always starts the window afresh, so
// that the chain alerted on is the most recent one; steps are within Within
// of the first, both ends included.
func (e *Engine) sequence(h hit, src eventSrc, dst []Match) []Match {
	r, at := h.rule, src.time()
	cache := stateFor(e, e.sequences, r)
	st, _ := cache.Get(h.key)
	if st != nil && at.Sub(st.start) > r.Sequence.Within {
		cache.Remove(h.key)
		st = nil
	}
	for step := len(r.Sequence.Steps) - 1; step >= 0; step-- {
		if h.steps&(1<<step) == 0 {
			continue
		}
		switch {
		case st != nil && st.next == step:
			st.evidence = append(st.evidence, evidence(r, step, src.event()))
			st.next++
			if st.next < len(r.Sequence.Steps) {
				return dst
			}
			cache.Remove(h.key)
			e.matches[r.index].Add(1)
			return append(dst, Match{Rule: r, Count: 1, Key: h.vals, Evidence: st.evidence})
		case step == 0:
			addKey(e, cache, h.key, &sequenceState{next: 1, start: at, evidence: []Evidence{evidence(r, 0, src.event())}})
			return dst
		}
	}
	return dst
}

// evidence copies what a step matched, its resource's attributes (a kernel
// event's process, container and pod) under the record's own; maps (request
// objects) are left out to keep sequence state small.
func evidence(r *Rule, step int, ev *Event) Evidence {
	attrs := pcommon.NewMap()
	if ev.Resource != (pcommon.Map{}) {
		copyScalars(ev.Resource, attrs)
	}
	copyScalars(ev.Attrs, attrs)
	return Evidence{Step: r.Sequence.Steps[step].Name, EventName: ev.Name, Time: ev.Time, Attrs: attrs}
}

// copyScalars copies every attribute that is not a map; strings are cloned so
// that state never pins a receiver's buffers.
func copyScalars(src, dst pcommon.Map) {
	src.Range(func(k string, v pcommon.Value) bool {
		switch v.Type() {
		case pcommon.ValueTypeMap:
		case pcommon.ValueTypeStr:
			dst.PutStr(strings.Clone(k), strings.Clone(v.Str()))
		default:
			v.CopyTo(dst.PutEmpty(strings.Clone(k)))
		}
		return true
	})
}

// stateFor returns rule r's bounded state, made on first use.
func stateFor[V any](e *Engine, m map[int]*lru.Cache[string, V], r *Rule) *lru.Cache[string, V] {
	if c, ok := m[r.index]; ok {
		return c
	}
	c, _ := lru.New[string, V](e.cfg.MaxKeys) // only fails on a size <= 0
	m[r.index] = c
	return c
}

// addKey stores a key, counting the one forgotten to make room.
func addKey[V any](e *Engine, c *lru.Cache[string, V], k string, v V) {
	if c.Add(k, v) {
		e.stats.DroppedState.Add(1)
	}
}

// byName is what one EventName meets: its index and the sequence steps.
type byName struct {
	name  string
	ix    *eventIndex
	steps []stepRef
}

// rulesFor returns the index and sequence steps of an EventName. A batch is
// mostly one EventName: the last one looked up is kept, so that most events
// cost a string comparison instead of a map lookup. The entries are made at
// load time: switching between names allocates nothing.
func (s *Set) rulesFor(name string) (*eventIndex, []stepRef) {
	if last := s.last.Load(); last != nil && last.name == name {
		return last.ix, last.steps
	}
	b := s.byName[name]
	if b == nil {
		return nil, nil // no rule reads this EventName
	}
	s.last.Store(b)
	return b.ix, b.steps
}

// buildByName makes rulesFor's entries, one per EventName a rule reads.
func (s *Set) buildByName() {
	s.byName = map[string]*byName{}
	for name := range s.index {
		s.byName[name] = &byName{name: name}
	}
	for name := range s.seqSteps {
		s.byName[name] = &byName{name: name}
	}
	for name, b := range s.byName {
		b.ix, b.steps = s.index[name], s.seqSteps[name]
	}
}
