package rules

import (
	"regexp"
	"strings"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/debug"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Native evaluation: a checked CEL condition compiled into Go closures, for
// the shapes rules are made of (attribute reads, comparisons, list
// membership, optional selects into request objects, exists/all over
// containers, the helpers). CEL stays the language and the judge: it parses
// and type-checks every condition, a condition with anything else in it runs
// only in CEL, and whatever native evaluation cannot decide exactly as CEL
// would (an error, a map compared with a map) is handed to the CEL program
// for that event. The interpreter's interfaces, allocations and cost meter
// cost 0.5 to 10 µs a condition; a closure tree costs tens of ns.

// nfn evaluates one node for the event in the activation.
type nfn func(a *activation) nval

// nativeProgram is a condition compiled to closures.
type nativeProgram struct {
	root  nfn
	nvars int // comprehension variables it binds
}

// eval runs the program; the result is nBool, nStop or nUndecided.
func (p *nativeProgram) eval(a *activation, limit int) nval {
	if cap(a.vars) < p.nvars {
		a.vars = make([]nval, p.nvars)
	}
	a.vars = a.vars[:p.nvars]
	a.steps, a.stepLimit = 0, limit
	v := p.root(a)
	if v.k != nBool || v.opt {
		if v.k == nStop {
			return v
		}
		return undecided
	}
	return v
}

// nativeCompiler compiles one condition; a nil nfn means "CEL only".
type nativeCompiler struct {
	set    *Set
	shared map[string]bool // && and || expressions several conditions have
	scope  map[string]int  // comprehension variables in scope, by name: their slot
	nvars  int
}

// compileNative returns the native program of a checked condition, or nil
// when the condition uses something native evaluation does not cover.
func compileNative(set *Set, checked celast.Expr, shared map[string]bool) *nativeProgram {
	c := &nativeCompiler{set: set, shared: shared, scope: map[string]int{}}
	root := c.expr(checked)
	if root == nil {
		return nil
	}
	return &nativeProgram{root: root, nvars: c.nvars}
}

func (c *nativeCompiler) expr(e celast.Expr) nfn {
	switch e.Kind() {
	case celast.LiteralKind:
		v, ok := literal(e.AsLiteral())
		if !ok {
			return nil
		}
		return func(*activation) nval { return v }
	case celast.IdentKind:
		return c.ident(e.AsIdent())
	case celast.ListKind:
		return c.list(e.AsList())
	case celast.SelectKind:
		return c.selectField(e.AsSelect())
	case celast.CallKind:
		return c.call(e)
	case celast.ComprehensionKind:
		return c.comprehension(e.AsComprehension())
	case celast.MapKind:
		if e.AsMap().Size() == 0 { // {}: a default for a missing map
			return func(*activation) nval { return nval{k: nMap, pv: emptyMapValue} }
		}
	}
	return nil // other maps, structs
}

func literal(v any) (nval, bool) {
	switch v := v.(type) {
	case types.Bool:
		return nBoolOf(bool(v)), true
	case types.Int:
		return nIntOf(int64(v)), true
	case types.Uint:
		return nval{k: nUint, n: uint64(v)}, true
	case types.Double:
		return nDoubleOf(float64(v)), true
	case types.String:
		return nStringOf(string(v)), true
	case types.Null:
		return nval{k: nNull}, true
	}
	return nval{}, false
}

func (c *nativeCompiler) ident(name string) nfn {
	if slot, ok := c.scope[name]; ok {
		return func(a *activation) nval { return a.vars[slot] }
	}
	r, ok := c.set.names[name]
	if !ok {
		return nil
	}
	if r.kind == nameList {
		v := c.set.nativeLists[r.index]
		return func(*activation) nval { return v }
	}
	if r.kind == namePresent {
		slot := r.index
		return func(a *activation) nval { return nBoolOf(a.has(slot)) }
	}
	typ, slot := r.typ, r.index
	return func(a *activation) nval { return a.nativeAttr(slot, name, typ) }
}

func (c *nativeCompiler) list(l celast.ListExpr) nfn {
	if len(l.OptionalIndices()) > 0 {
		return nil
	}
	if v, ok := constStrings(l); ok { // ["create", "update", "patch"]: a set, built once
		return func(*activation) nval { return v }
	}
	elems := make([]nfn, len(l.Elements()))
	for i, e := range l.Elements() {
		if elems[i] = c.expr(e); elems[i] == nil {
			return nil
		}
	}
	return func(a *activation) nval {
		start := len(a.scratch)
		for _, f := range elems {
			a.scratch = append(a.scratch, f(a))
		}
		return listOf(nList, a.scratch[start:len(a.scratch):len(a.scratch)])
	}
}

// selectField is x.f (an error when x has no f) or has(x.f).
func (c *nativeCompiler) selectField(s celast.SelectExpr) nfn {
	operand := c.expr(s.Operand())
	if operand == nil {
		return nil
	}
	field, test := s.FieldName(), s.IsTestOnly()
	return func(a *activation) nval {
		v := operand(a)
		if v.k != nMap || v.opt {
			return undecided
		}
		got, found := v.pv.Map().Get(field)
		switch {
		case test:
			return nBoolOf(found)
		case !found:
			return undecided // CEL: no such key
		}
		return fromPdata(got)
	}
}

func (c *nativeCompiler) comprehension(cp celast.ComprehensionExpr) nfn {
	if cp.HasIterVar2() {
		return nil
	}
	iterRange := c.expr(cp.IterRange())
	accuInit := c.expr(cp.AccuInit())
	if iterRange == nil || accuInit == nil {
		return nil
	}
	if f := c.quantifier(cp, iterRange); f != nil {
		return f
	}
	iter, accu := c.nvars, c.nvars+1
	c.nvars += 2
	saved := map[string]int{}
	for name, slot := range map[string]int{cp.IterVar(): iter, cp.AccuVar(): accu} {
		if old, ok := c.scope[name]; ok {
			saved[name] = old
		}
		c.scope[name] = slot
	}
	cond, step := c.expr(cp.LoopCondition()), c.expr(cp.LoopStep())
	delete(c.scope, cp.IterVar())
	result := c.expr(cp.Result()) // the result sees the accumulator only
	delete(c.scope, cp.AccuVar())
	for name, slot := range saved {
		c.scope[name] = slot
	}
	if cond == nil || step == nil || result == nil {
		return nil
	}
	return func(a *activation) nval {
		r := iterRange(a)
		if r.opt || (r.k != nMap && !r.isList()) {
			return undecided
		}
		var keys []string
		n := 0
		if r.k == nMap {
			keys = mapKeys(r.pv)
			n = len(keys)
		} else {
			n = r.length()
		}
		a.vars[accu] = accuInit(a)
		for i := 0; i < n; i++ {
			if a.steps++; a.steps > a.stepLimit {
				return nval{k: nStop}
			}
			if keys != nil {
				a.vars[iter] = nStringOf(keys[i])
			} else {
				a.vars[iter] = r.at(i)
			}
			if more := cond(a); more.k == nBool && !more.b && !more.opt {
				break
			} else if more.k == nStop {
				return more
			}
			a.vars[accu] = step(a)
		}
		return result(a)
	}
}

// quantifier compiles the exists and all macros to a loop that stops at the
// first element that decides: exists is true when one element is, false when
// none is and none errs.
func (c *nativeCompiler) quantifier(cp celast.ComprehensionExpr, iterRange nfn) nfn {
	init, step, result := cp.AccuInit(), cp.LoopStep(), cp.Result()
	want, ok := init.AsLiteral().(types.Bool)
	if init.Kind() != celast.LiteralKind || !ok || step.Kind() != celast.CallKind ||
		result.Kind() != celast.IdentKind || result.AsIdent() != cp.AccuVar() {
		return nil
	}
	stepCall := step.AsCall()
	exists := bool(!want) // exists starts from false and ors; all from true and ands
	if op := stepCall.FunctionName(); (exists && op != operators.LogicalOr) || (!exists && op != operators.LogicalAnd) ||
		len(stepCall.Args()) != 2 || stepCall.Args()[0].Kind() != celast.IdentKind || stepCall.Args()[0].AsIdent() != cp.AccuVar() {
		return nil
	}
	iter := c.nvars
	c.nvars++
	old, shadowed := c.scope[cp.IterVar()]
	c.scope[cp.IterVar()] = iter
	pred := c.expr(stepCall.Args()[1])
	delete(c.scope, cp.IterVar())
	if shadowed {
		c.scope[cp.IterVar()] = old
	}
	if pred == nil {
		return nil
	}
	return func(a *activation) nval {
		r := iterRange(a)
		if r.opt || !r.isList() { // maps: the general loop's (keys)
			return undecided
		}
		failed := false
		for i, n := 0, r.length(); i < n; i++ {
			if a.steps++; a.steps > a.stepLimit {
				return nval{k: nStop}
			}
			a.vars[iter] = r.at(i)
			v := pred(a)
			switch {
			case v.k == nBool && !v.opt:
				if v.b == exists {
					return v
				}
			case v.k == nStop:
				return v
			default:
				failed = true
			}
		}
		if failed {
			return undecided
		}
		return nBoolOf(!exists)
	}
}

func mapKeys(v pcommon.Value) []string {
	keys := make([]string, 0, v.Map().Len())
	for k := range v.Map().All() {
		keys = append(keys, k)
	}
	return keys
}

func (c *nativeCompiler) call(e celast.Expr) nfn {
	call := e.AsCall()
	if f := c.path(call); f != nil {
		return f
	}
	var target nfn
	if call.IsMemberFunction() {
		if target = c.expr(call.Target()); target == nil {
			return nil
		}
	}
	args := make([]nfn, len(call.Args()))
	for i, arg := range call.Args() {
		if args[i] = c.expr(arg); args[i] == nil {
			return nil
		}
	}
	name := call.FunctionName()
	if f := c.attrComparison(call); f != nil {
		return f
	}
	if target != nil {
		return c.memberCall(name, target, args, call.Args())
	}
	switch name {
	case operators.LogicalAnd, operators.LogicalOr:
		return c.logical(e, name == operators.LogicalOr)
	case operators.LogicalNot:
		x := args[0]
		return func(a *activation) nval {
			v := x(a)
			if v.k != nBool || v.opt {
				return passError(v)
			}
			return nBoolOf(!v.b)
		}
	case operators.NotStrictlyFalse:
		x := args[0]
		return func(a *activation) nval {
			v := x(a)
			if v.k == nStop {
				return v
			}
			return nBoolOf(v.k != nBool || v.opt || v.b)
		}
	case operators.Equals, operators.NotEquals:
		x, y, negate := args[0], args[1], name == operators.NotEquals
		return func(a *activation) nval {
			l, r := x(a), y(a)
			eq, ok := equal(l, r)
			if !ok {
				return passError(l, r)
			}
			return nBoolOf(eq != negate)
		}
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		return relation(name, args[0], args[1])
	case operators.In:
		x, y := args[0], args[1]
		return func(a *activation) nval {
			elem, list := x(a), y(a)
			found, ok := contains(list, elem)
			if !ok {
				return passError(elem, list)
			}
			return nBoolOf(found)
		}
	case operators.Conditional:
		cond, yes, no := args[0], args[1], args[2]
		return func(a *activation) nval {
			v := cond(a)
			if v.k != nBool || v.opt {
				return passError(v)
			}
			if v.b {
				return yes(a)
			}
			return no(a)
		}
	case operators.Add:
		if len(c.scope) == 0 {
			return c.memoized(debug.ToDebugString(call.Args()[0])+" + "+debug.ToDebugString(call.Args()[1]), add(args[0], args[1]))
		}
		return add(args[0], args[1])
	case operators.OptSelect:
		field, ok := call.Args()[1].AsLiteral().(types.String)
		if call.Args()[1].Kind() != celast.LiteralKind || !ok {
			return nil
		}
		return optSelect(args[0], string(field))
	case operators.Index:
		return index(args[0], args[1])
	case overloads.Size:
		x := args[0]
		return func(a *activation) nval { return size(x(a)) }
	case overloads.TypeConvertString:
		x := args[0]
		return func(a *activation) nval { return toString(x(a)) }
	case "url_decode":
		x := args[0]
		return func(a *activation) nval {
			v := x(a)
			if v.k != nString || v.opt {
				return passError(v)
			}
			return nStringOf(urlDecode(v.s))
		}
	}
	if f, ok := stringHelpers[name]; ok {
		return stringPred(args[0], args[1], f)
	}
	if f, ok := stringAnyHelpers[name]; ok {
		return stringAnyPred(args[0], args[1], f)
	}
	if name == "has_any" {
		return hasAnyNative(args[0], args[1])
	}
	return nil
}

// path compiles x.?f.?g.orValue(d), the way rules read into request
// objects, to one walk down the maps; rooted at an attribute, it is read once
// per event however many conditions read it.
func (c *nativeCompiler) path(call celast.CallExpr) nfn {
	if !call.IsMemberFunction() || call.FunctionName() != "orValue" || len(call.Args()) != 1 {
		return nil
	}
	var fields []string
	root := call.Target()
	for root.Kind() == celast.CallKind && root.AsCall().FunctionName() == operators.OptSelect {
		sel := root.AsCall()
		field, ok := sel.Args()[1].AsLiteral().(types.String)
		if sel.Args()[1].Kind() != celast.LiteralKind || !ok {
			return nil
		}
		fields = append([]string{string(field)}, fields...)
		root = sel.Args()[0]
	}
	if len(fields) == 0 {
		return nil
	}
	from, def := c.expr(root), c.expr(call.Args()[0])
	if from == nil || def == nil {
		return nil
	}
	walk := func(a *activation) nval {
		v := from(a)
		for _, f := range fields {
			if v.k != nMap || v.opt {
				return passError(v)
			}
			got, found := v.pv.Map().Get(f)
			if !found {
				return def(a)
			}
			v = fromPdata(got)
		}
		return v
	}
	if root.Kind() == celast.IdentKind && len(c.scope) == 0 {
		return c.memoized(debug.ToDebugString(call.Target())+".orValue("+debug.ToDebugString(call.Args()[0])+")", walk)
	}
	return walk
}

// memoized evaluates f at most once per event, for the conditions that
// compute the same value (key: the expression); f must depend on the event
// alone, never on a comprehension's variables.
func (c *nativeCompiler) memoized(key string, f nfn) nfn {
	slot, ok := c.set.memo[key]
	if !ok {
		slot = len(c.set.memo)
		c.set.memo[key] = slot
	}
	return func(a *activation) nval {
		if m := &a.memo[slot]; m.gen == a.gen {
			return m.v
		}
		v := f(a)
		if v.k != nStop { // the limit is per condition: another may get further
			a.memo[slot] = nslot{a.gen, v}
		}
		return v
	}
}

func (c *nativeCompiler) memberCall(name string, target nfn, args []nfn, argExprs []celast.Expr) nfn {
	switch {
	case name == "orValue" && len(args) == 1:
		def := args[0]
		return func(a *activation) nval {
			v := target(a)
			switch {
			case v.k == nNone:
				return def(a)
			case v.opt:
				return v.plain()
			}
			return passError(v)
		}
	case name == "hasValue" && len(args) == 0:
		return func(a *activation) nval {
			v := target(a)
			switch {
			case v.k == nNone:
				return nFalse
			case v.opt:
				return nTrue
			}
			return passError(v)
		}
	case name == overloads.Size && len(args) == 0:
		return func(a *activation) nval { return size(target(a)) }
	case name == "lowerAscii" && len(args) == 0:
		return func(a *activation) nval {
			v := target(a)
			if v.k != nString || v.opt {
				return passError(v)
			}
			return nStringOf(lowerASCII(v.s))
		}
	case name == overloads.Matches && len(args) == 1:
		pat, ok := argExprs[0].AsLiteral().(types.String)
		if argExprs[0].Kind() != celast.LiteralKind || !ok {
			return nil
		}
		re, err := regexp.Compile(string(pat))
		if err != nil {
			return nil // CEL reports the error
		}
		return func(a *activation) nval {
			v := target(a)
			if v.k != nString || v.opt {
				return passError(v)
			}
			return nBoolOf(re.MatchString(v.s))
		}
	}
	if f, ok := stringMethods[name]; ok && len(args) == 1 {
		return stringPred(target, args[0], f)
	}
	return nil
}

var stringMethods = map[string]func(s, arg string) bool{
	overloads.StartsWith: strings.HasPrefix,
	overloads.EndsWith:   strings.HasSuffix,
	overloads.Contains:   strings.Contains,
}

var stringHelpers = map[string]func(s, arg string) bool{
	"glob":      glob,
	"icontains": icontains,
}

var stringAnyHelpers = map[string]func(s, item string) bool{
	"glob_any":        glob,
	"starts_with_any": strings.HasPrefix,
	"ends_with_any":   strings.HasSuffix,
	"icontains_any":   icontains,
	"in_cidr":         inCIDR,
}

// passError returns the first operand that is an error or the cost limit,
// else undecided: whatever native evaluation cannot decide goes to CEL.
func passError(vs ...nval) nval {
	for _, v := range vs {
		if v.k == nStop {
			return v
		}
	}
	return undecided
}

// logical is a chain of && (or of ||), flattened: false && x is false
// whatever x is, even an error, as in CEL, where the operators commute.
func (c *nativeCompiler) logical(e celast.Expr, or bool) nfn {
	call := e.AsCall()
	var terms []nfn
	var flatten func(e celast.Expr) bool
	flatten = func(e celast.Expr) bool {
		if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == call.FunctionName() && !c.isShared(e) {
			for _, arg := range e.AsCall().Args() {
				if !flatten(arg) {
					return false
				}
			}
			return true
		}
		f := c.expr(e)
		terms = append(terms, f)
		return f != nil
	}
	for _, arg := range call.Args() {
		if !flatten(arg) {
			return nil
		}
	}
	f := func(a *activation) nval {
		var failed nval // the first term that is not a bool
		decided := true
		for _, f := range terms {
			v := f(a)
			if v.k == nBool && !v.opt {
				if v.b == or {
					return v
				}
				continue
			}
			if decided || v.k == nStop {
				failed, decided = v, false
			}
		}
		if !decided {
			return passError(failed)
		}
		return nBoolOf(!or)
	}
	if key := debug.ToDebugString(e); len(c.scope) == 0 && c.shared[key] {
		return c.memoized(key, f)
	}
	return f
}

func (c *nativeCompiler) isShared(e celast.Expr) bool {
	return len(c.scope) == 0 && c.shared[debug.ToDebugString(e)]
}

// sharedLogic finds the && and || expressions (outside comprehensions) that
// more than one condition has: the macros rules are built from.
func sharedLogic(conds []*condition) map[string]bool {
	count := map[string]int{}
	for _, cond := range conds {
		if cond.checked == nil {
			continue
		}
		seen := map[string]bool{}
		var walk func(e celast.Expr)
		walk = func(e celast.Expr) {
			if e.Kind() != celast.CallKind {
				return
			}
			call := e.AsCall()
			if op := call.FunctionName(); op == operators.LogicalAnd || op == operators.LogicalOr {
				if key := debug.ToDebugString(e); !seen[key] {
					seen[key] = true
					count[key]++
				}
			}
			for _, arg := range call.Args() {
				walk(arg)
			}
		}
		walk(cond.checked.NativeRep().Expr())
	}
	shared := map[string]bool{}
	for key, n := range count {
		if n > 1 {
			shared[key] = true
		}
	}
	return shared
}

func relation(op string, x, y nfn) nfn {
	return func(a *activation) nval {
		l, r := x(a), y(a)
		var c int
		switch {
		case l.opt || r.opt:
			return passError(l, r)
		case isNumber(l.k) && isNumber(r.k):
			var ok bool
			if c, ok = compareNumbers(l, r); !ok {
				return nFalse // NaN: every comparison is false
			}
		case l.k == nString && r.k == nString:
			c = strings.Compare(l.s, r.s)
		default:
			return passError(l, r)
		}
		switch op {
		case operators.Less:
			return nBoolOf(c < 0)
		case operators.LessEquals:
			return nBoolOf(c <= 0)
		case operators.Greater:
			return nBoolOf(c > 0)
		}
		return nBoolOf(c >= 0)
	}
}

// add is + of ints, strings and lists; an overflow, and other numbers, are
// CEL's.
func add(x, y nfn) nfn {
	return func(a *activation) nval {
		l, r := x(a), y(a)
		switch {
		case l.opt || r.opt:
		case l.k == nInt && r.k == nInt:
			if sum := l.int() + r.int(); (sum > l.int()) == (r.int() > 0) {
				return nIntOf(sum)
			}
		case l.k == nString && r.k == nString:
			return nStringOf(l.s + r.s)
		case l.isList() && r.isList():
			start := len(a.scratch)
			a.scratch = append(a.scratch, l, r)
			return listOf(nJoin, a.scratch[start:len(a.scratch):len(a.scratch)])
		}
		return passError(l, r)
	}
}

// optSelect is x.?f: optional.of(x.f) when x has f, else optional.none().
func optSelect(x nfn, field string) nfn {
	return func(a *activation) nval {
		v := x(a)
		switch {
		case v.k == nNone:
			return v
		case v.k != nMap:
			return passError(v)
		}
		got, found := v.pv.Map().Get(field)
		if !found {
			return nNoneVal
		}
		return optionalOf(fromPdata(got))
	}
}

// index is x[k] of a map with a string key or of a list with an int.
func index(x, k nfn) nfn {
	return func(a *activation) nval {
		v, key := x(a), k(a)
		switch {
		case v.opt || key.opt:
		case v.k == nMap && key.k == nString:
			if got, found := v.pv.Map().Get(key.s); found {
				return fromPdata(got)
			}
		case v.isList() && key.k == nInt:
			if i := key.int(); i >= 0 && i < int64(v.length()) {
				return v.at(int(i))
			}
		}
		return passError(v, key)
	}
}

func stringPred(x, y nfn, f func(s, arg string) bool) nfn {
	return func(a *activation) nval {
		s, arg := x(a), y(a)
		if s.k != nString || s.opt || arg.k != nString || arg.opt {
			return passError(s, arg)
		}
		return nBoolOf(f(s.s, arg.s))
	}
}

// stringAnyPred is f(s, item) for any string item of a list, as stringAny.
func stringAnyPred(x, y nfn, f func(s, item string) bool) nfn {
	return func(a *activation) nval {
		s, list := x(a), y(a)
		if s.k != nString || s.opt || !list.isList() || list.opt {
			return passError(s, list)
		}
		for i, n := 0, list.length(); i < n; i++ {
			if item := list.at(i); item.k == nString && f(s.s, item.s) {
				return nTrue
			}
		}
		return nFalse
	}
}

func hasAnyNative(x, y nfn) nfn {
	return func(a *activation) nval {
		l, r := x(a), y(a)
		if !l.isList() || l.opt || !r.isList() || r.opt {
			return passError(l, r)
		}
		for i, n := 0, l.length(); i < n; i++ {
			found, ok := contains(r, l.at(i))
			if !ok {
				return passError(l, r)
			}
			if found {
				return nTrue
			}
		}
		return nFalse
	}
}

// lowerASCII is ext.Strings' lowerAscii: only A-Z change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// attrComparison compiles the commonest leaves in one closure each: an
// attribute compared with a constant (verb == "create", status_code >= 400,
// resource in ["pods", "secrets"]), read from the activation's cache.
func (c *nativeCompiler) attrComparison(call celast.CallExpr) nfn {
	args := call.Args()
	if len(args) != 2 || call.IsMemberFunction() {
		return nil
	}
	op := call.FunctionName()
	attr, other := args[0], args[1]
	if attr.Kind() != celast.IdentKind && (op == operators.Equals || op == operators.NotEquals) {
		attr, other = other, attr
	}
	if attr.Kind() != celast.IdentKind {
		return nil
	}
	name := attr.AsIdent()
	r, ok := c.set.names[name]
	if _, local := c.scope[name]; local || !ok || r.kind != nameAttr {
		return nil
	}
	slot, typ := r.index, r.typ
	switch op {
	case operators.Equals, operators.NotEquals:
		lit, ok := other.AsLiteral().(types.String)
		if other.Kind() != celast.LiteralKind || !ok || typ != typeString {
			return nil
		}
		want, negate := string(lit), op == operators.NotEquals
		return func(a *activation) nval {
			return nBoolOf((a.attrRef(slot, name, typ).s == want) != negate)
		}
	case operators.In:
		if typ != typeString {
			return nil
		}
		var set *strSet
		switch {
		case other.Kind() == celast.IdentKind:
			if lr, ok := c.set.names[other.AsIdent()]; ok && lr.kind == nameList {
				set = c.set.nativeLists[lr.index].set()
			}
		case other.Kind() == celast.ListKind:
			if l, ok := constStrings(other.AsList()); ok {
				set = l.set()
			}
		}
		if set == nil {
			return nil
		}
		return func(a *activation) nval {
			_, found := set.has[a.attrRef(slot, name, typ).s]
			return nBoolOf(found)
		}
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		lit, ok := other.AsLiteral().(types.Int)
		if other.Kind() != celast.LiteralKind || !ok || typ != typeInt || args[0].Kind() != celast.IdentKind {
			return nil
		}
		n := int64(lit)
		switch op {
		case operators.Less:
			return func(a *activation) nval { return nBoolOf(a.attrRef(slot, name, typ).int() < n) }
		case operators.LessEquals:
			return func(a *activation) nval { return nBoolOf(a.attrRef(slot, name, typ).int() <= n) }
		case operators.Greater:
			return func(a *activation) nval { return nBoolOf(a.attrRef(slot, name, typ).int() > n) }
		}
		return func(a *activation) nval { return nBoolOf(a.attrRef(slot, name, typ).int() >= n) }
	}
	return nil
}

// constStrings is a list literal of strings as a set.
func constStrings(l celast.ListExpr) (nval, bool) {
	items := make([]string, 0, len(l.Elements()))
	for _, e := range l.Elements() {
		s, ok := e.AsLiteral().(types.String)
		if e.Kind() != celast.LiteralKind || !ok {
			return nval{}, false
		}
		items = append(items, string(s))
	}
	return stringList(items), len(l.OptionalIndices()) == 0
}
