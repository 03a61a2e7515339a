package rules

import (
	"sort"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
)

// An eventIndex narrows the rules of one EventName to those that can match an
// event, the way Falco indexes rules by syscall: most rules require one
// attribute (often k8s.audit.object.resource) to hold one of a few values, and
// an event that holds another value cannot match them. The index keys rules on
// the attribute that the most rules constrain; the others are always evaluated.
type eventIndex struct {
	attr    string             // the discriminating attribute; "" for none
	byValue map[string][]*Rule // rules that need attr to equal the key
	always  []*Rule            // rules that do not constrain attr
}

// candidates returns the rules an event must be evaluated against, in rule
// order. The result may be the index's own slice: read it, never append to it.
func (ix *eventIndex) candidates(ev *Event, act *activation) []*Rule {
	if ix.attr == "" {
		return ix.always
	}
	var keyed []*Rule
	if v, ok := ev.lookup(ix.attr); ok {
		keyed = ix.byValue[v.AsString()]
	} else {
		keyed = ix.byValue[""]
	}
	if len(keyed) == 0 {
		return ix.always
	}
	if len(ix.always) == 0 {
		return keyed
	}
	merged := mergeByIndex(act.candidates[:0], ix.always, keyed)
	act.candidates = merged // scratch the activation keeps for the next event
	return merged
}

// mergeByIndex merges two lists sorted by rule index.
func mergeByIndex(dst, a, b []*Rule) []*Rule {
	for len(a) > 0 && len(b) > 0 {
		if a[0].index < b[0].index {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	return append(append(dst, a...), b...)
}

// constraints are the attribute values a condition requires: attr -> allowed
// values. Only string attributes compared with == or in are understood;
// anything else constrains nothing, which is always safe.
type constraints map[string][]string

// buildIndexes makes one index per EventName from the rules' conditions.
func (c *compiler) buildIndexes(asts map[*Rule]*cel.Ast, macroASTs map[string]*cel.Ast) {
	c.set.index = map[string]*eventIndex{}
	for ev, rules := range c.set.byEvent {
		cons := make([]constraints, len(rules))
		count := map[string]int{}
		for i, r := range rules {
			cons[i] = c.constraintsOf(asts[r], macroASTs, 0)
			for attr := range cons[i] {
				count[attr]++
			}
		}
		best, bestN := "", 0
		for attr, n := range count {
			if n > bestN || n == bestN && attr < best {
				best, bestN = attr, n
			}
		}
		ix := &eventIndex{attr: best, byValue: map[string][]*Rule{}}
		for i, r := range rules {
			vals, ok := cons[i][best]
			if !ok {
				ix.always = append(ix.always, r)
				continue
			}
			for _, v := range dedupe(vals) {
				ix.byValue[v] = append(ix.byValue[v], r)
			}
		}
		c.set.index[ev] = ix
	}
}

func dedupe(vals []string) []string {
	sort.Strings(vals)
	out := vals[:0]
	for i, v := range vals {
		if i == 0 || v != vals[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// constraintsOf walks the top-level conjunction of a checked condition (and
// of the macros it names) for attr == "x", "x" == attr and attr in [...].
func (c *compiler) constraintsOf(a *cel.Ast, macros map[string]*cel.Ast, depth int) constraints {
	out := constraints{}
	if a == nil || depth > 8 {
		return out
	}
	native := a.NativeRep()
	refs := native.ReferenceMap()
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		switch e.Kind() {
		case celast.CallKind:
			call := e.AsCall()
			args := call.Args()
			switch call.FunctionName() {
			case operators.LogicalAnd:
				for _, arg := range args {
					walk(arg)
				}
			case operators.Equals:
				if attr, ok := c.stringAttr(refs, args[0]); ok {
					if s, ok := stringLit(args[1]); ok {
						out.add(attr, []string{s})
					}
				} else if attr, ok := c.stringAttr(refs, args[1]); ok {
					if s, ok := stringLit(args[0]); ok {
						out.add(attr, []string{s})
					}
				}
			case operators.In:
				if attr, ok := c.stringAttr(refs, args[0]); ok {
					if vals, ok := c.stringValues(refs, args[1]); ok {
						out.add(attr, vals)
					}
				}
			}
		case celast.IdentKind, celast.SelectKind:
			if ref, ok := refs[e.ID()]; ok {
				if m, isMacro := macros[ref.Name]; isMacro {
					for attr, vals := range c.constraintsOf(m, macros, depth+1) {
						out.add(attr, vals)
					}
				}
			}
		}
	}
	walk(native.Expr())
	return out
}

// add intersects: two constraints on one attribute must both hold.
func (cs constraints) add(attr string, vals []string) {
	prev, ok := cs[attr]
	if !ok {
		cs[attr] = append([]string(nil), vals...)
		return
	}
	var both []string
	for _, p := range prev {
		for _, v := range vals {
			if p == v {
				both = append(both, v)
			}
		}
	}
	cs[attr] = both
}

// stringAttr reports whether e names a string attribute (not a list or macro).
func (c *compiler) stringAttr(refs map[int64]*celast.ReferenceInfo, e celast.Expr) (string, bool) {
	ref, ok := refs[e.ID()]
	if !ok {
		return "", false
	}
	nr, ok := c.set.names[ref.Name]
	if !ok || nr.kind != nameAttr || nr.typ != typeString || isRecordField(ref.Name) {
		return "", false
	}
	return ref.Name, true
}

// The record's own fields are not attributes that the index can look up.
func isRecordField(name string) bool {
	return name == "event.name" || name == "event.severity" || name == "event.body"
}

func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// stringValues reads a list literal of strings or a named list.
func (c *compiler) stringValues(refs map[int64]*celast.ReferenceInfo, e celast.Expr) ([]string, bool) {
	switch e.Kind() {
	case celast.ListKind:
		var out []string
		for _, el := range e.AsList().Elements() {
			s, ok := stringLit(el)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case celast.IdentKind:
		ref, ok := refs[e.ID()]
		if !ok {
			return nil, false
		}
		nr, ok := c.set.names[ref.Name]
		if !ok || nr.kind != nameList {
			return nil, false
		}
		l, ok := c.set.lists[nr.index].(traits.Lister)
		if !ok {
			return nil, false
		}
		var out []string
		it := l.Iterator()
		for it.HasNext() == types.True {
			if s, ok := it.Next().(types.String); ok {
				out = append(out, string(s))
			}
		}
		return out, true
	}
	return nil, false
}
