package rules

import (
	"slices"
	"sort"
	"strconv"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// An eventIndex narrows the rules of one EventName to those that can match an
// event, the way Falco indexes rules by syscall, but on any attribute. Most
// rules require some attributes to hold one of a few values
// (k8s.audit.object.resource == "pods" && k8s.audit.object.subresource ==
// "exec"); an event holding other values cannot match them. The index is a
// small decision tree: each node keys its rules on the attribute most of them
// constrain, and sends the rules that do not constrain it to a sibling node
// keyed on the next attribute. A leaf holds the rules to evaluate, and fans out
// the rules that need one of several attributes (user.name ==
// "system:anonymous" || "system:unauthenticated" in groups).
type eventIndex struct {
	root *indexNode
}

type indexNode struct {
	attr    string // "" for a leaf
	slot    int    // attr's slot in the activation
	typ     attrType
	list    bool                  // attr is a list: key on each of its elements
	absent  string                // the key of an event without attr: its zero value as text
	byValue map[string]*indexNode // rules that need attr to equal the key
	rest    *indexNode            // rules that do not constrain attr
	rules   []*Rule               // a leaf's rules, evaluated as they are
	fanout  []fanout              // a leaf's rules that need any one of several atoms
	// children is byValue for lookups, made by finish.
	children keyed[*indexNode]
	// absentChild is where an event without attr goes (the child of its zero
	// value's key): known without reading anything.
	absentChild *indexNode
}

func (n *indexNode) child(key string) *indexNode { return n.children.get(key) }

// fanout keys rules on one attribute of their any-of requirement.
type fanout struct {
	attr     string
	slot     int
	typ      attrType
	list     bool
	absent   string
	byValue  map[string][]*Rule
	ruleSets keyed[[]*Rule] // byValue for lookups, made by finish
	// absentRules are the rules of an event without attr.
	absentRules []*Rule
}

func (fo *fanout) rules(key string) []*Rule { return fo.ruleSets.get(key) }

// anyValue is the key of rules that need an attribute to be non-empty.
const anyValue = "\x00any"

// maxIndexDepth bounds how deep keyed nodes nest (the attribute lookups an
// event costs grow with it; siblings add one lookup each).
const maxIndexDepth = 4

// candidates returns the rules an event must be evaluated against, in rule
// order, each once. The result may be the index's own slice: read it, never
// append to it.
func (ix *eventIndex) candidates(act *activation) []*Rule {
	found := act.found[:0]
	found = ix.root.collect(act, found)
	act.found = found
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	merged := act.candidates[:0]
	for _, rs := range found {
		merged = append(merged, rs...)
	}
	// Few rules: an insertion sort restores rule order, then repeats go.
	for i := 1; i < len(merged); i++ {
		for j := i; j > 0 && merged[j].index < merged[j-1].index; j-- {
			merged[j], merged[j-1] = merged[j-1], merged[j]
		}
	}
	out := merged[:1]
	for _, r := range merged[1:] {
		if r != out[len(out)-1] {
			out = append(out, r)
		}
	}
	act.candidates = merged // scratch the activation keeps for the next event
	return out
}

// An event's keys for an attribute are its value as text (an absent
// attribute reads as its zero value) and anyValue besides for a non-empty
// one; or every element, for a list.

// keyText is a scalar as the index keys it: as pdata's AsString would write it.
func keyText(v *nval) string {
	switch v.k {
	case nString:
		return v.s
	case nInt:
		if n := v.int(); n >= 0 && n < int64(len(smallInts)) {
			return smallInts[n] // status codes: no allocation
		}
		return strconv.FormatInt(v.int(), 10)
	case nBool:
		return strconv.FormatBool(v.b)
	case nDouble:
		return pcommon.NewValueDouble(v.double()).AsString()
	}
	return ""
}

var smallInts = func() []string {
	s := make([]string, 1024)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func (n *indexNode) collect(act *activation, found [][]*Rule) [][]*Rule {
	for ; n != nil; n = n.rest {
		if n.attr == "" {
			if len(n.rules) > 0 {
				found = append(found, n.rules)
			}
			for i := range n.fanout {
				fo := &n.fanout[i]
				if !act.has(fo.slot) {
					if len(fo.absentRules) > 0 {
						found = append(found, fo.absentRules)
					}
					continue
				}
				v := act.attrRef(fo.slot, fo.attr, fo.typ)
				if !fo.list {
					text := keyText(v)
					if rs := fo.rules(text); len(rs) > 0 {
						found = append(found, rs)
					}
					if rs := fo.rules(anyValue); len(rs) > 0 && text != "" && text != fo.absent {
						found = append(found, rs)
					}
					continue
				}
				for j, m := 0, listLen(v); j < m; j++ {
					if rs := fo.rules(keyText(ptr(v.at(j)))); len(rs) > 0 {
						found = append(found, rs)
					}
				}
			}
			return found
		}
		if !act.has(n.slot) {
			if n.absentChild != nil {
				found = n.absentChild.collect(act, found)
			}
			continue
		}
		v := act.attrRef(n.slot, n.attr, n.typ)
		if !n.list {
			text := keyText(v)
			if child := n.child(text); child != nil {
				found = child.collect(act, found)
			}
			if child := n.child(anyValue); child != nil && text != "" && text != n.absent {
				found = child.collect(act, found)
			}
			continue
		}
		for j, m := 0, listLen(v); j < m; j++ {
			if child := n.child(keyText(ptr(v.at(j)))); child != nil {
				found = child.collect(act, found)
			}
		}
	}
	return found
}

// listLen is the length of a list attribute; anything else keys nothing.
func ptr(v nval) *nval { return &v }

func listLen(v *nval) int {
	if v.isList() {
		return v.length()
	}
	return 0
}

// finish points the index's nodes at the activation's attribute slots, and
// sets up the single-key shortcuts.
func (n *indexNode) finish(names map[string]nameRef) {
	if n == nil {
		return
	}
	if n.attr != "" {
		n.slot, n.typ = names[n.attr].index, names[n.attr].typ
	}
	for i := range n.fanout {
		fo := &n.fanout[i]
		fo.slot, fo.typ = names[fo.attr].index, names[fo.attr].typ
		fo.ruleSets = newKeyed(fo.byValue)
		if !fo.list && !isSynthetic(fo.attr) {
			fo.absentRules = fo.byValue[fo.absent]
		}
	}
	for _, child := range n.byValue {
		child.finish(names)
	}
	n.children = newKeyed(n.byValue)
	if n.attr != "" && !n.list && !isSynthetic(n.attr) {
		n.absentChild = n.byValue[n.absent]
	}
	n.rest.finish(names)
}

// atom is one indexable requirement: attr holds one of vals (for a list
// attribute: one of its elements does; anyValue: any non-empty value).
type atom struct {
	attr string
	vals []string
	list bool
}

// constraints are what a condition requires of an event, as far as the index
// understands it: every atom of all, and at least one atom of each anyOf.
// Anything else constrains nothing, which is always safe.
type constraints struct {
	all   map[string]atom
	anyOf [][]atom
}

// add intersects: two requirements on one attribute must both hold.
func (cs *constraints) add(a atom) {
	if cs.all == nil {
		cs.all = map[string]atom{}
	}
	prev, ok := cs.all[a.attr]
	if !ok {
		a.vals = append([]string(nil), a.vals...)
		cs.all[a.attr] = a
		return
	}
	if prev.list != a.list {
		return // cannot happen for one attribute; keep the first
	}
	switch {
	case len(prev.vals) == 1 && prev.vals[0] == anyValue:
		prev.vals = withoutEmpty(a.vals)
	case len(a.vals) == 1 && a.vals[0] == anyValue:
		prev.vals = withoutEmpty(prev.vals)
	case prev.list:
		return // a list may hold both: keep the first requirement
	default:
		var both []string
		for _, p := range prev.vals {
			for _, v := range a.vals {
				if p == v {
					both = append(both, v)
				}
			}
		}
		prev.vals = both
	}
	cs.all[a.attr] = prev
}

func withoutEmpty(vals []string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
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
			for attr := range cons[r].all {
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
		return leaf(rules, cons)
	}
	t, _ := lookupAttr(best)
	node := &indexNode{attr: best, byValue: map[string]*indexNode{}, absent: zeroKey(t), list: isList(t)}
	keyed := map[string][]*Rule{}
	var rest []*Rule
	for _, r := range rules {
		a, ok := cons[r].all[best]
		if !ok {
			rest = append(rest, r)
			continue
		}
		for _, v := range dedupe(a.vals) {
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
	// Siblings are looked up one after the other, not nested: only keyed
	// children go deeper.
	node.rest = buildNode(rest, cons, below, depth)
	return node
}

// leaf holds rules left unkeyed; those with an any-of requirement are fanned
// out on its atoms instead of being evaluated for every event.
func leaf(rules []*Rule, cons map[*Rule]constraints) *indexNode {
	n := &indexNode{}
	byAttr := map[string]int{}
	for _, r := range rules {
		groups := cons[r].anyOf
		if len(groups) == 0 {
			n.rules = append(n.rules, r)
			continue
		}
		for _, a := range groups[0] {
			i, ok := byAttr[a.attr]
			if !ok {
				t, _ := lookupAttr(a.attr)
				i = len(n.fanout)
				byAttr[a.attr] = i
				n.fanout = append(n.fanout, fanout{attr: a.attr, list: a.list, absent: zeroKey(t), byValue: map[string][]*Rule{}})
			}
			for _, v := range dedupe(append([]string(nil), a.vals...)) {
				n.fanout[i].byValue[v] = append(n.fanout[i].byValue[v], r)
			}
		}
	}
	return n
}

// zeroKey is the key an absent attribute of type t reads as.
func zeroKey(t attrType) string {
	switch t {
	case typeInt, typeDouble:
		return "0" // conditions read an absent number as 0
	case typeBool:
		return "false"
	}
	return ""
}

func isList(t attrType) bool { return t == typeStringList }

// buildIndexes makes one index per EventName from the rules' conditions.
func (c *compiler) buildIndexes(asts map[*Rule]*cel.Ast) {
	c.set.index = map[string]*eventIndex{}
	for ev, rules := range c.set.byEvent {
		cons := map[*Rule]constraints{}
		for _, r := range rules {
			cons[r] = c.constraintsOf(asts[r])
		}
		root := buildNode(rules, cons, map[string]bool{}, 0)
		root.finish(c.set.names)
		c.set.index[ev] = &eventIndex{root: root}
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

// constraintsOf reads a checked condition (its macros expanded).
func (c *compiler) constraintsOf(a *cel.Ast) constraints {
	if a == nil {
		return constraints{}
	}
	native := a.NativeRep()
	return c.constraintsOfExpr(native.Expr(), native.ReferenceMap(), 0)
}

// constraintsOfExpr walks the top-level conjunction of an expression for
// attr == "x", "x" == attr, attr in [...], attr != "", "x" in listAttr and
// has_any(listAttr, [...]), and for disjunctions of those.
func (c *compiler) constraintsOfExpr(root celast.Expr, refs map[int64]*celast.ReferenceInfo, depth int) constraints {
	var out constraints
	if depth > 16 {
		return out
	}
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() == operators.LogicalAnd {
			for _, arg := range call.Args() {
				walk(arg)
			}
			return
		}
		if call.FunctionName() == operators.LogicalOr {
			c.disjunction(e, refs, depth, &out)
			return
		}
		if a, ok := c.atomOf(e, refs); ok {
			out.add(a)
		}
	}
	walk(root)
	return out
}

// disjunction reads A || B || ...: when every branch is one atom on the same
// attribute their values join into one atom; when they are atoms on several
// attributes they make an any-of requirement.
func (c *compiler) disjunction(e celast.Expr, refs map[int64]*celast.ReferenceInfo, depth int, out *constraints) {
	var branches []celast.Expr
	var flatten func(e celast.Expr)
	flatten = func(e celast.Expr) {
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == operators.LogicalOr {
			for _, arg := range e.AsCall().Args() {
				flatten(arg)
			}
			return
		}
		branches = append(branches, e)
	}
	flatten(e)
	// Every atom of a branch is necessary for it; one per branch will do.
	var branchAtoms []map[string]atom
	for _, b := range branches {
		cs := c.constraintsOfExpr(b, refs, depth+1)
		if len(cs.all) == 0 {
			return // a branch the index cannot read: the disjunction says nothing
		}
		branchAtoms = append(branchAtoms, cs.all)
	}
	// An attribute every branch constrains: the values join into one atom.
	var shared []string
	for attr := range branchAtoms[0] {
		inAll := true
		for _, ba := range branchAtoms[1:] {
			if _, ok := ba[attr]; !ok {
				inAll = false
				break
			}
		}
		if inAll {
			shared = append(shared, attr)
		}
	}
	if len(shared) > 0 {
		sort.Strings(shared)
		joined := atom{attr: shared[0], list: branchAtoms[0][shared[0]].list}
		for _, ba := range branchAtoms {
			joined.vals = append(joined.vals, ba[shared[0]].vals...)
		}
		if !hasAnyValue(joined.vals) {
			out.add(joined)
		}
		return
	}
	// Otherwise an any-of: one atom per branch, merged per attribute.
	byAttr := map[string]atom{}
	for _, ba := range branchAtoms {
		names := make([]string, 0, len(ba))
		for attr := range ba {
			names = append(names, attr)
		}
		sort.Strings(names)
		a := ba[names[0]]
		if prev, ok := byAttr[a.attr]; ok {
			prev.vals = append(prev.vals, a.vals...)
			byAttr[a.attr] = prev
		} else {
			a.vals = append([]string(nil), a.vals...)
			byAttr[a.attr] = a
		}
	}
	var group []atom
	for _, a := range byAttr {
		group = append(group, a)
	}
	sort.Slice(group, func(i, j int) bool { return group[i].attr < group[j].attr })
	out.anyOf = append(out.anyOf, group)
}

// hasAnyValue: a join with "any non-empty value" and "" in it would let every
// event through; such a disjunction is better left unindexed.
func hasAnyValue(vals []string) bool {
	for _, v := range vals {
		if v == anyValue {
			return true
		}
	}
	return false
}

// atomOf reads one comparison as an atom.
func (c *compiler) atomOf(e celast.Expr, refs map[int64]*celast.ReferenceInfo) (atom, bool) {
	call := e.AsCall()
	args := call.Args()
	switch call.FunctionName() {
	case operators.Equals:
		for _, pair := range [][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if attr, ok := c.scalarAttr(refs, pair[0]); ok {
				if s, ok := stringLit(pair[1]); ok {
					return atom{attr: attr, vals: []string{s}}, true
				}
			}
		}
	case operators.NotEquals:
		for _, pair := range [][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if attr, ok := c.scalarAttr(refs, pair[0]); ok {
				if s, ok := stringLit(pair[1]); ok && s == "" {
					return atom{attr: attr, vals: []string{anyValue}}, true
				}
			}
		}
	case operators.In:
		if attr, ok := c.scalarAttr(refs, args[0]); ok {
			if vals, ok := c.stringValues(refs, args[1]); ok {
				return atom{attr: attr, vals: vals}, true
			}
		}
		if attr, ok := c.listAttr(refs, args[1]); ok {
			if s, ok := stringLit(args[0]); ok {
				return atom{attr: attr, vals: []string{s}, list: true}, true
			}
		}
	case "has_any":
		if attr, ok := c.listAttr(refs, args[0]); ok {
			if vals, ok := c.stringValues(refs, args[1]); ok {
				return atom{attr: attr, vals: vals, list: true}, true
			}
		}
	case overloads.Contains, overloads.StartsWith, overloads.EndsWith:
		// s.contains("x") can only hold for a non-empty s.
		if call.IsMemberFunction() && len(args) == 1 {
			if attr, ok := c.attrOfType(refs, call.Target(), typeString); ok {
				if lit, ok := stringLit(args[0]); ok && lit != "" {
					return atom{attr: attr, vals: []string{anyValue}}, true
				}
			}
		}
	case "icontains", "starts_with_any", "ends_with_any", "icontains_any":
		// Every needle non-empty: only a non-empty attribute can hold one.
		if attr, ok := c.attrOfType(refs, args[0], typeString); ok {
			needles, ok := c.stringValues(refs, args[1])
			if !ok && call.FunctionName() == "icontains" {
				var lit string
				if lit, ok = stringLit(args[1]); ok {
					needles = []string{lit}
				}
			}
			if ok && len(needles) > 0 && !slices.Contains(needles, "") {
				return atom{attr: attr, vals: []string{anyValue}}, true
			}
		}
	}
	return atom{}, false
}

// scalarAttr reports whether e names a string or int attribute.
func (c *compiler) scalarAttr(refs map[int64]*celast.ReferenceInfo, e celast.Expr) (string, bool) {
	return c.attrOfType(refs, e, typeString, typeInt)
}

// listAttr reports whether e names a list-of-strings attribute.
func (c *compiler) listAttr(refs map[int64]*celast.ReferenceInfo, e celast.Expr) (string, bool) {
	return c.attrOfType(refs, e, typeStringList)
}

func (c *compiler) attrOfType(refs map[int64]*celast.ReferenceInfo, e celast.Expr, want ...attrType) (string, bool) {
	ref, ok := refs[e.ID()]
	if !ok {
		return "", false
	}
	nr, ok := c.set.names[ref.Name]
	if !ok || nr.kind != nameAttr || isRecordField(ref.Name) {
		return "", false
	}
	for _, t := range want {
		if nr.typ == t {
			return ref.Name, true
		}
	}
	return "", false
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

// isSynthetic names the attributes that are record fields, not map entries:
// never absent.
func isSynthetic(attr string) bool {
	return attr == "event.name" || attr == "event.severity" || attr == "event.body"
}

// keyed finds a value by its key. An index node has a few keys, most often
// one: comparing the key with each (lengths first) is cheaper than hashing it
// for a map, which only nodes with many keys use.
type keyed[V any] struct {
	keys []string
	vals []V
	m    map[string]V
}

// scanKeys is the most keys compared one by one.
const scanKeys = 8

func newKeyed[V any](m map[string]V) keyed[V] {
	if len(m) > scanKeys {
		return keyed[V]{m: m}
	}
	var k keyed[V]
	for key, v := range m {
		k.keys = append(k.keys, key)
		k.vals = append(k.vals, v)
	}
	return k
}

func (k *keyed[V]) get(key string) V {
	if k.m != nil {
		return k.m[key]
	}
	for i, s := range k.keys {
		if s == key {
			return k.vals[i]
		}
	}
	var zero V
	return zero
}
