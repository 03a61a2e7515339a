package rules

import (
	"hash/fnv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// What a gateway's front tier needs to route events to the rules tier by key:
// every stateful rule (threshold, throttle, sequence) names the attributes its
// state is kept by, and all events of one key must reach one replica.

// StateBy returns the attributes the rule keeps its state by (its threshold's,
// throttle's or sequence's by), or nil for a stateless rule.
func (r *Rule) StateBy() []string {
	switch {
	case r.Threshold != nil:
		return r.Threshold.By
	case r.Throttle != nil:
		return r.Throttle.By
	case r.Sequence != nil:
		return r.Sequence.By
	}
	return nil
}

// Stateful reports whether the rule keeps state between events.
func (r *Rule) Stateful() bool { return len(r.StateBy()) > 0 }

// KeyBy is the name of a key family: the by-attributes joined with commas, in
// the rule's order (the order the key's values are joined in).
func KeyBy(by []string) string { return strings.Join(by, ",") }

// KeyFamily returns the rule's key family (KeyBy of StateBy), "" when stateless.
func (r *Rule) KeyFamily() string { return r.keyBy }

// Keyed appends to dst the enabled stateful rules that the event would feed:
// a threshold's or throttle's condition, or one of a sequence's steps,
// matches. Nothing is counted and no state changes: the front tier asks,
// the rules tier that the event is routed to counts.
func (e *Engine) Keyed(ev *Event, dst []*Rule) []*Rule {
	ix, steps := e.set.rulesFor(ev.Name)
	if ix == nil && len(steps) == 0 {
		return dst
	}
	act := e.activations.Get().(*activation)
	act.reset(e.set, ev)
	defer e.activations.Put(act)
	if ix != nil {
		for _, r := range ix.candidates(act) {
			if r.Stateful() && e.eval(&r.cond, act) {
				dst = append(dst, r)
			}
		}
	}
	for _, ref := range steps {
		if len(dst) > 0 && dst[len(dst)-1] == ref.rule {
			continue // an earlier step of the same rule matched
		}
		if e.eval(&ref.rule.Sequence.Steps[ref.step].cond, act) {
			dst = append(dst, ref.rule)
		}
	}
	return dst
}

// AttrRoutingKeyBy names, on a copy the front tier routed, the key family it
// was routed for (KeyBy's form); the rules tier feeds the copy to that
// family's rules only (Event.KeyBy).
const AttrRoutingKeyBy = "k8ssec.routing.key_by"

// KeyOf returns the event's values of the by-attributes joined, and false
// when one is absent or empty: such an event is counted by no key.
func KeyOf(ev *Event, by []string) (string, bool) {
	k, _, ok := key(ev, by)
	return k, ok
}

// RoutingTraceID is a key's place on the loadbalancing exporter's hash ring,
// written as a routed copy's trace ID: the same on every front replica, and
// spread evenly over the ring. key is KeyOf's form.
func RoutingTraceID(family, key string) pcommon.TraceID {
	h := fnv.New128a()
	_, _ = h.Write([]byte(family))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	var id pcommon.TraceID
	h.Sum(id[:0])
	return id
}
