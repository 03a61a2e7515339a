package rules

import (
	"sort"
	"strconv"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
)

// An eventIndex narrows the rules of one EventName to those that can match an
// event, the way Falco indexes rules by syscall, but on any attribute. Most
// rules require some attributes to hold one of a few values
// (k8s.audit.object.resource == "pods" && k8s.audit.object.subresource ==
// "exec"); an event holding other values cannot match them. The index is a
// small decision tree: each node keys its rules on the attribute most of them
// constrain, and sends the rules that do not constrain it to a sibling node
// keyed on the next attribute. A leaf holds the rules to evaluate.
type eventIndex struct {
	root *indexNode
}

type indexNode struct {
	attr    string                // "" for a leaf
	absent  string                // the key of an event without attr: its zero value as text
	byValue map[string]*indexNode // rules that need attr to equal the key
	rest    *indexNode            // rules that do not constrain attr
	rules   []*Rule               // a leaf's rules, evaluated as they are
}

// maxIndexDepth bounds the attribute lookups an event costs before any rule.
const maxIndexDepth = 4

// candidates returns the rules an event must be evaluated against, in rule
// order. The result may be the index's own slice: read it, never append to it.
func (ix *eventIndex) candidates(ev *Event, act *activation) []*Rule {
	var found [1 << maxIndexDepth][]*Rule
	n := ix.root.collect(ev, found[:0])
	switch len(n) {
	case 0:
		return nil
	case 1:
		return n[0]
	}
	merged := act.candidates[:0]
	for _, rs := range n {
		merged = append(merged, rs...)
	}
	// Few rules: an insertion sort restores rule order.
	for i := 1; i < len(merged); i++ {
		for j := i; j > 0 && merged[j].index < merged[j-1].index; j-- {
			merged[j], merged[j-1] = merged[j-1], merged[j]
		}
	}
	act.candidates = merged // scratch the activation keeps for the next event
	return merged
}

func (n *indexNode) collect(ev *Event, found [][]*Rule) [][]*Rule {
	if n == nil {
		return found
	}
	if n.attr == "" {
		if len(n.rules) > 0 {
			found = append(found, n.rules)
		}
		return found
	}
	val := n.absent
	if v, ok := ev.lookup(n.attr); ok {
		val = v.AsString()
	}
	if child := n.byValue[val]; child != nil {
		found = child.collect(ev, found)
	}
	return n.rest.collect(ev, found)
}

// buildNode indexes rules on the attributes their constraints name, not
// reusing the ones already keyed on the way down.
func buildNode(rules []*Rule, cons map[*Rule]constraints, used map[string]bool, depth int) *indexNode {
	if len(rules) == 0 {
		return nil
	}
	best, bestN := "", 0
	if depth < maxIndexDepth {
		count := map[string]int{}
		for _, r := range rules {
			for attr := range cons[r] {
				if !used[attr] {
					count[attr]++
				}
			}
		}
		for attr, n := range count {
			if n > bestN || n == bestN && attr < best {
				best, bestN = attr, n
			}
		}
	}
	if bestN == 0 {
		return &indexNode{rules: rules}
	}
	node := &indexNode{attr: best, byValue: map[string]*indexNode{}}
	if t, _ := lookupAttr(best); t == typeInt {
		node.absent = "0" // conditions read an absent int as 0
	}
	keyed := map[string][]*Rule{}
	var rest []*Rule
	for _, r := range rules {
		vals, ok := cons[r][best]
		if !ok {
			rest = append(rest, r)
			continue
		}
		for _, v := range dedupe(vals) {
			keyed[v] = append(keyed[v], r)
		}
	}
	below := make(map[string]bool, len(used)+1)
	for a := range used {
		below[a] = true
	}
	below[best] = true
	for v, rs := range keyed {
		node.byValue[v] = buildNode(rs, cons, below, depth+1)
	}
	node.rest = buildNode(rest, cons, below, depth+1)
	return node
}

// constraints are the attribute values a condition requires: attr -> allowed
// values. Only string attributes compared with == or in are understood;
// anything else constrains nothing, which is always safe.
type constraints map[string][]string

// buildIndexes makes one index per EventName from the rules' conditions.
func (c *compiler) buildIndexes(asts map[*Rule]*cel.Ast) {
	c.set.index = map[string]*eventIndex{}
	for ev, rules := range c.set.byEvent {
		cons := map[*Rule]constraints{}
		for _, r := range rules {
			cons[r] = c.constraintsOf(asts[r])
		}
		c.set.index[ev] = &eventIndex{root: buildNode(rules, cons, map[string]bool{}, 0)}
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

// constraintsOf walks the top-level conjunction of a checked condition (its
// macros expanded) for attr == "x", "x" == attr and attr in [...].
func (c *compiler) constraintsOf(a *cel.Ast) constraints {
	if a == nil {
		return constraints{}
	}
	native := a.NativeRep()
	return c.constraintsOfExpr(native.Expr(), native.ReferenceMap(), 0)
}

// constraintsOfExpr is constraintsOf for one expression of a checked AST.
func (c *compiler) constraintsOfExpr(root celast.Expr, refs map[int64]*celast.ReferenceInfo, depth int) constraints {
	out := constraints{}
	if depth > 16 {
		return out
	}
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
			case operators.LogicalOr:
				// A constraint holds for a disjunction when every branch
				// constrains the same attribute: the values join.
				left := c.constraintsOfExpr(args[0], refs, depth+1)
				right := c.constraintsOfExpr(args[1], refs, depth+1)
				for attr, lv := range left {
					if rv, ok := right[attr]; ok {
						out.add(attr, append(append([]string(nil), lv...), rv...))
					}
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
		}
	}
	walk(root)
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
	if !ok || nr.kind != nameAttr || (nr.typ != typeString && nr.typ != typeInt) || isRecordField(ref.Name) {
		return "", false
	}
	return ref.Name, true
}

// The record's own fields are not attributes that the index can look up.
func isRecordField(name string) bool {
	return name == "event.name" || name == "event.severity" || name == "event.body"
}

// stringLit reads a string or integer literal as the text an attribute's
// AsString gives for it ("403" for the int 403).
func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	switch v := e.AsLiteral().(type) {
	case types.String:
		return string(v), true
	case types.Int:
		return strconv.FormatInt(int64(v), 10), true
	}
	return "", false
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
