package rules

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// Options bound what rules may cost.
type Options struct {
	// CostLimit caps one condition's evaluation (CEL cost units, about one per
	// operation); over it the evaluation stops and counts as an error.
	CostLimit uint64
	// CELOnly evaluates every condition with CEL's interpreter, never natively
	// (native.go): for comparisons in benchmarks and tests.
	CELOnly bool
	// Select, when set, keeps only the rules it returns true for in the
	// index: the others are compiled (their errors still stop the load) but
	// never evaluated. It splits the packs between a gateway's tiers.
	Select func(*Rule) bool
	// StrictAttributes refuses a condition that names an attribute the
	// vocabulary (schema.go) does not know, instead of warning: for the
	// shipped packs' tests, which must not depend on names nothing writes.
	StrictAttributes bool
}

// DefaultCostLimit lets a condition walk a pod spec many times over but stops
// a runaway comprehension long before it stalls the pipeline.
const DefaultCostLimit = 1_000_000

// Severity of a rule, ordered.
type Severity int

// Severities, as rule files name them.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string { return severityNames[s] }

func parseSeverity(s string) (Severity, bool) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), true
		}
	}
	return 0, false
}

// Rule is one compiled rule.
type Rule struct {
	Name        string
	ID          string
	Description string
	Category    string
	Reference   string
	Severity    Severity
	Tags        []string
	// Covers names the public anchor rules this rule detects the intent of
	// (docs/coverage.md): "falco:<rule name>", "tracee:<TRC id>",
	// "sigma:<rule id>", "crs:<rule id>".
	Covers     []string
	Tactics    []string // MITRE ATT&CK tactic IDs (TA....) from tags mitre.TA....
	Techniques []string // MITRE ATT&CK technique IDs (T....) from tags mitre.T....
	Events     []string // EventNames it applies to; for a sequence, those of all steps
	Enabled    bool
	Ruleset    Ruleset
	File       string
	Line       int
	Tests      []TestCase
	Threshold  *Threshold
	Throttle   *Throttle
	Sequence   *Sequence
	// Action is what the security_rules processor does beside alerting:
	// ActionKill, or ActionNone.
	Action string

	cond   condition
	output template
	index  int    // position in Set.Rules, the index of its state
	keyBy  string // KeyBy(StateBy()): the routing key family, "" when stateless
}

// Index is the rule's position in its Set's Rules.
func (r *Rule) Index() int { return r.index }

// Threshold alerts when Count matches share a key within Window.
type Threshold struct {
	By     []string
	Count  int
	Window time.Duration
}

// Throttle gives one alert per key per Period.
type Throttle struct {
	By     []string
	Period time.Duration
}

// Sequence is ordered steps joined on By within Within.
type Sequence struct {
	By     []string
	Within time.Duration
	Steps  []Step
}

// Step is one step of a sequence.
type Step struct {
	Name   string
	Events []string
	cond   condition
}

// Set is a compiled rule set. It is immutable and shared by engines.
type Set struct {
	Rules []*Rule
	// Warnings are what loading found questionable but not wrong: names the
	// vocabulary does not know, with the closest one it does.
	Warnings []Warning

	byEvent  map[string][]*Rule // enabled non-sequence rules per EventName
	index    map[string]*eventIndex
	seqSteps map[string][]stepRef
	names    map[string]nameRef
	attrs    int // attribute slots an activation caches
	lists    []ref.Val
	// byName and last serve rulesFor.
	byName map[string]*byName
	last   atomic.Pointer[byName]
	// memo numbers the values native evaluation computes once per event.
	memo map[string]int
	// attrTable finds the slots of an event's attributes.
	attrTable attrTable
	// nativeLists are lists as native evaluation reads them, by the same index.
	nativeLists []nval
}

type stepRef struct {
	rule *Rule
	step int
}

// nameKind says what an identifier in a condition stands for.
type nameKind uint8

const (
	nameAttr nameKind = iota
	nameList
	namePresent // _has.<attr>: whether the event carries attr (vocabulary.go)
)

type nameRef struct {
	kind  nameKind
	index int      // into Set.lists, or an attribute's cache slot
	typ   attrType // for attributes
	attr  string   // for namePresent: the attribute
}

// Load parses and compiles rule files. Every problem of every file is
// reported, each with its file, line, entry and reason.
func Load(sources []Source, opts Options) (*Set, error) {
	if opts.CostLimit == 0 {
		opts.CostLimit = DefaultCostLimit
	}
	p, errs := parse(sources)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	c := &compiler{p: p, opts: opts, set: &Set{names: map[string]nameRef{}, memo: map[string]int{},
		byEvent: map[string][]*Rule{}, seqSteps: map[string][]stepRef{}}}
	return c.compile()
}

type compiler struct {
	p        *parsed
	opts     Options
	set      *Set
	env      *cel.Env
	errs     []error
	ruleASTs map[*Rule]*cel.Ast // checked conditions, for the index
	expanded map[string]string  // macro name -> condition with its macros expanded
	read     map[string]bool    // the attributes conditions name
	warned   map[string]bool    // entry + unknown name: warned once
}

func (c *compiler) fail(at pos, entry, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: at.file, Line: at.line, Entry: entry, Reason: fmt.Sprintf(format, args...)})
}

func (c *compiler) compile() (*Set, error) {
	for name, t := range attributeTypes {
		c.set.names[name] = nameRef{kind: nameAttr, typ: t, index: c.set.attrs}
		c.set.attrs++
	}
	c.read = map[string]bool{}
	for _, name := range c.p.listOrder {
		c.addList(name, c.p.lists[name].Items)
	}
	macroNames := make([]string, 0, len(c.p.macros))
	for name := range c.p.macros {
		macroNames = append(macroNames, name)
	}
	sort.Strings(macroNames)
	// Exceptions of the field/values kind become hidden lists; declare them
	// before the environment is built.
	c.applyOverrides()
	for _, r := range c.p.rules {
		for i := range r.Exceptions {
			e := &r.Exceptions[i]
			if e.Field != "" {
				c.addList(fmt.Sprintf("_exc%d", len(c.set.lists)), e.Values)
			}
		}
	}
	env, err := c.newEnv()
	if err != nil {
		return nil, err
	}
	c.env = env

	// Macros are expanded into the conditions that name them, so that a rule is
	// one CEL program (a macro evaluated as a program of its own cost more than
	// the rule around it) and the index sees the whole condition. Each macro is
	// also compiled alone, to report its errors at its own line.
	c.ruleASTs = map[*Rule]*cel.Ast{}
	if !c.checkMacroCycles(macroNames) {
		return nil, joinErrors(c.errs)
	}
	c.expanded = map[string]string{}
	for _, name := range macroNames {
		m := c.p.macros[name]
		c.program(c.expand(m.Condition), m.pos, "macro "+quote(name))
	}
	excList := 0
	for _, r := range c.p.rules {
		c.compileRule(r, &excList)
	}
	if len(c.errs) > 0 {
		return nil, joinErrors(c.errs)
	}
	c.buildIndexes(c.ruleASTs)
	c.set.buildByName()
	c.compileNatives()
	// Only the attributes some condition reads are located in an event: the
	// rest of the vocabulary would cost a lookup each, for nothing.
	c.set.attrTable = newAttrTable(c.set.names, c.read)
	return c.set, nil
}

func (c *compiler) addList(name string, items []string) {
	c.set.names[name] = nameRef{kind: nameList, index: len(c.set.lists)}
	// Elements held as CEL values: reading them (in, has_any) converts nothing.
	vals := make([]ref.Val, len(items))
	for i, it := range items {
		vals[i] = types.String(it)
	}
	c.set.lists = append(c.set.lists, types.NewRefValList(types.DefaultTypeAdapter, vals))
	c.set.nativeLists = append(c.set.nativeLists, stringList(items))
}

func (c *compiler) newEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{cel.OptionalTypes(), ext.Strings(), ext.Encoders(), cel.CrossTypeNumericComparisons(true)}
	opts = append(opts, helperFunctions()...)
	for name, ref := range c.set.names {
		switch ref.kind {
		case nameAttr:
			opts = append(opts, cel.Variable(name, ref.typ.cel()))
		case nameList:
			opts = append(opts, cel.Variable(name, cel.ListType(cel.DynType))) // see attrType.cel
		}
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("rules: building the CEL environment: %w", err)
	}
	return env, nil
}

// program compiles a boolean condition, reporting errors against the entry.
func (c *compiler) program(expr string, at pos, entry string) (condition, *cel.Ast) {
	parsed, iss := c.env.Parse(expr)
	if iss.Err() != nil {
		c.fail(at, entry, "condition does not compile:\n%s", iss.Err())
		return condition{}, nil
	}
	if err := c.openVocabulary(parsed, at, entry); err != nil {
		c.fail(at, entry, "condition: %v", err)
		return condition{}, nil
	}
	checked, iss := c.env.Check(parsed)
	if iss.Err() != nil {
		c.fail(at, entry, "condition does not compile:\n%s", iss.Err())
		return condition{}, nil
	}
	// dyn: a bare unknown attribute (app.enabled); true only when it is true.
	if t := checked.OutputType(); t != cel.BoolType && t != cel.DynType {
		c.fail(at, entry, "condition is a %s, want a bool", checked.OutputType())
		return condition{}, nil
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if needsCostTracking(c.env, checked, c.opts.CostLimit) {
		popts = append(popts, cel.CostLimit(c.opts.CostLimit), cel.InterruptCheckFrequency(100))
	}
	prg, err := c.env.Program(checked, popts...)
	if err != nil {
		c.fail(at, entry, "condition: %v", err)
		return condition{}, nil
	}
	for _, ref := range checked.NativeRep().ReferenceMap() {
		if r, ok := c.set.names[ref.Name]; ok && r.kind == nameAttr {
			c.read[ref.Name] = true
		} else if ok && r.kind == namePresent {
			c.read[r.attr] = true
		}
	}
	return condition{prg: prg, checked: checked, limit: int(min(c.opts.CostLimit, 1<<31))}, checked
}

// compileNatives compiles every rule's and step's condition for native
// evaluation (native.go), once all are known: the parts several conditions
// share (a macro such as pod_create) are then evaluated once per event.
func (c *compiler) compileNatives() {
	var conds []*condition
	for _, r := range c.set.Rules {
		if r.Sequence == nil {
			conds = append(conds, &r.cond)
			continue
		}
		for i := range r.Sequence.Steps {
			conds = append(conds, &r.Sequence.Steps[i].cond)
		}
	}
	shared := sharedLogic(conds)
	for _, cond := range conds {
		if cond.checked != nil && !c.opts.CELOnly {
			cond.native = compileNative(c.set, cond.checked.NativeRep().Expr(), shared)
		}
		cond.checked = nil
	}
}

// checkMacroCycles refuses macros that use themselves, directly or not.
func (c *compiler) checkMacroCycles(names []string) bool {
	uses := map[string][]string{}
	for _, name := range names {
		m := c.p.macros[name]
		for _, other := range names {
			if referencesIdent(m.Condition, other) {
				uses[name] = append(uses[name], other)
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(string, []string) bool
	visit = func(n string, path []string) bool {
		switch state[n] {
		case visiting:
			m := c.p.macros[n]
			c.fail(m.pos, "macro "+quote(n), "macros use each other in a cycle: %s", strings.Join(append(path, n), " -> "))
			return false
		case done:
			return true
		}
		state[n] = visiting
		for _, u := range uses[n] {
			if !visit(u, append(path, n)) {
				return false
			}
		}
		state[n] = done
		return true
	}
	ok := true
	for _, n := range names {
		ok = visit(n, nil) && ok
	}
	return ok
}

// expand replaces every macro a condition names with its (expanded)
// condition in parentheses. Cycles are refused before.
func (c *compiler) expand(expr string) string {
	var b strings.Builder
	inString := byte(0)
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		if inString != 0 {
			b.WriteByte(ch)
			if ch == '\\' && i+1 < len(expr) {
				i++
				b.WriteByte(expr[i])
			} else if ch == inString {
				inString = 0
			}
			continue
		}
		if ch == '"' || ch == '\'' {
			inString = ch
			b.WriteByte(ch)
			continue
		}
		if !isIdentByte(ch) || ch >= '0' && ch <= '9' || i > 0 && (isIdentByte(expr[i-1]) || expr[i-1] == '.') {
			b.WriteByte(ch)
			continue
		}
		end := i
		for end < len(expr) && isIdentByte(expr[end]) {
			end++
		}
		word := expr[i:end]
		m, isMacro := c.p.macros[word]
		if !isMacro || end < len(expr) && expr[end] == '.' {
			b.WriteString(word)
		} else {
			body, done := c.expanded[word]
			if !done {
				body = c.expand(m.Condition)
				c.expanded[word] = body
			}
			b.WriteString("(" + body + ")")
		}
		i = end - 1
	}
	return b.String()
}

// referencesIdent reports whether expr uses ident as a whole identifier (not a
// part of a longer or dotted name, nor inside a string literal).
func referencesIdent(expr, ident string) bool {
	inString := byte(0)
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		if inString != 0 {
			if ch == '\\' {
				i++
			} else if ch == inString {
				inString = 0
			}
			continue
		}
		if ch == '"' || ch == '\'' {
			inString = ch
			continue
		}
		if !strings.HasPrefix(expr[i:], ident) {
			continue
		}
		before := i == 0 || !isIdentByte(expr[i-1]) && expr[i-1] != '.'
		end := i + len(ident)
		after := end == len(expr) || !isIdentByte(expr[end]) && expr[end] != '.'
		if before && after {
			return true
		}
	}
	return false
}

func isIdentByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func (c *compiler) applyOverrides() {
	byName := map[string]*ruleSpec{}
	for _, r := range c.p.rules {
		byName[r.Rule] = r
	}
	for _, o := range c.p.overrides {
		r, ok := byName[o.Override]
		if !ok {
			c.fail(o.pos, "override "+quote(o.Override), "no rule of this name is loaded before it")
			continue
		}
		if o.Enabled != nil {
			r.Enabled = o.Enabled
		}
		if o.Severity != "" {
			r.Severity = o.Severity
		}
		if o.Action != "" {
			r.Action, r.actionPos = o.Action, pos{o.pos.file, o.actionLine}
		}
		r.Exceptions = append(r.Exceptions, o.Exceptions...)
	}
}

func (c *compiler) compileRule(spec *ruleSpec, excList *int) {
	entry := "rule " + quote(spec.Rule)
	at := spec.pos
	r := &Rule{
		Name: spec.Rule, ID: spec.ID, Description: spec.Description, Category: spec.Category,
		Reference: spec.Reference, Tags: spec.Tags, Covers: spec.Covers, Enabled: spec.Enabled == nil || *spec.Enabled,
		Ruleset: *spec.ruleset, File: at.file, Line: at.line, Tests: spec.Tests, index: len(c.set.Rules),
	}
	for _, tag := range spec.Tags {
		switch {
		case strings.HasPrefix(tag, "mitre.TA"):
			r.Tactics = append(r.Tactics, strings.TrimPrefix(tag, "mitre."))
		case strings.HasPrefix(tag, "mitre.T"):
			r.Techniques = append(r.Techniques, strings.TrimPrefix(tag, "mitre."))
		}
	}
	for _, cv := range spec.Covers {
		if err := checkCover(cv); err != nil {
			c.fail(at, entry, "covers: %v", err)
		}
	}
	var ok bool
	if r.Severity, ok = parseSeverity(spec.Severity); !ok {
		c.fail(at, entry, "severity %q is not one of %s", spec.Severity, strings.Join(severityNames, ", "))
	}
	if strings.TrimSpace(spec.Output) == "" {
		c.fail(at, entry, "output is required: it is the alert's body")
	} else if r.output, ok = parseTemplate(spec.Output, c.fail, func(name string) {
		c.unknownName(at, entry, "output: placeholder", name)
	}, at, entry); !ok {
		return
	}

	// Exceptions join the condition as "and not"; field/values ones read the
	// hidden list declared for them.
	var excepts []string
	for _, e := range spec.Exceptions {
		switch {
		case e.Name == "":
			c.fail(pos{at.file, e.line}, entry, "an exception needs a name")
		case e.Condition != "" && e.Field != "":
			c.fail(pos{at.file, e.line}, entry, "exception %q: give either field and values or a condition, not both", e.Name)
		case e.Condition != "":
			excepts = append(excepts, "("+e.Condition+")")
		case e.Field != "":
			if _, known := lookupAttr(e.Field); !known && !inOpenFamily(e.Field) {
				c.unknownName(pos{at.file, e.line}, entry, fmt.Sprintf("exception %q: field", e.Name), e.Field)
			}
			name := fmt.Sprintf("_exc%d", len(c.p.lists)+*excList)
			*excList++
			excepts = append(excepts, fmt.Sprintf("(%s in %s)", e.Field, name))
		default:
			c.fail(pos{at.file, e.line}, entry, "exception %q: give field and values, or a condition", e.Name)
		}
	}

	switch {
	case spec.Sequence != nil:
		if spec.Condition != "" || len(spec.Events) > 0 || spec.Threshold != nil {
			c.fail(at, entry, "a sequence rule has steps instead of events, condition and threshold")
			return
		}
		c.compileSequence(r, spec, excepts, entry)
	default:
		if len(spec.Events) == 0 {
			c.fail(at, entry, "events is required: the EventNames the rule applies to (e.g. [k8s.audit])")
		}
		if strings.TrimSpace(spec.Condition) == "" {
			c.fail(at, entry, "condition is required")
			return
		}
		r.Events = spec.Events
		cond := "(" + spec.Condition + ")"
		if len(excepts) > 0 {
			cond += " && !(" + strings.Join(excepts, " || ") + ")"
		}
		r.cond, c.ruleASTs[r] = c.program(c.expand(cond), pos{at.file, spec.condLine}, entry)
	}
	if t := spec.Threshold; t != nil {
		if t.Count < 2 || t.Window <= 0 {
			c.fail(at, entry, "threshold needs count of at least 2 and a positive window")
		}
		c.checkKeys(t.By, at, entry, "threshold.by")
		r.Threshold = &Threshold{By: t.By, Count: t.Count, Window: t.Window}
	}
	if t := spec.Throttle; t != nil {
		if t.Period <= 0 {
			c.fail(at, entry, "throttle needs a positive period")
		}
		c.checkKeys(t.By, at, entry, "throttle.by")
		r.Throttle = &Throttle{By: t.By, Period: t.Period}
	}
	r.Action = c.action(spec, r, entry)
	r.keyBy = KeyBy(r.StateBy())
	c.set.Rules = append(c.set.Rules, r)
	if !r.Enabled || (c.opts.Select != nil && !c.opts.Select(r)) {
		return
	}
	if r.Sequence != nil {
		for i, s := range r.Sequence.Steps {
			for _, ev := range s.Events {
				c.set.seqSteps[ev] = append(c.set.seqSteps[ev], stepRef{r, i})
			}
		}
		return
	}
	for _, ev := range r.Events {
		c.set.byEvent[ev] = append(c.set.byEvent[ev], r)
	}
}

func (c *compiler) compileSequence(r *Rule, spec *ruleSpec, excepts []string, entry string) {
	s := spec.Sequence
	at := spec.pos
	if len(s.Steps) < 2 || s.Within <= 0 || len(s.By) == 0 {
		c.fail(at, entry, "a sequence needs at least two steps, a positive within and by keys")
		return
	}
	if len(s.Steps) > 64 { // the engine keeps an event's matched steps in a uint64
		c.fail(at, entry, "a sequence has at most 64 steps, this one has %d", len(s.Steps))
		return
	}
	c.checkKeys(s.By, at, entry, "sequence.by")
	seq := &Sequence{By: s.By, Within: s.Within}
	seen := map[string]bool{}
	for i, st := range s.Steps {
		if len(st.Events) == 0 || strings.TrimSpace(st.Condition) == "" {
			c.fail(at, entry, "sequence step %d (%s) needs events and a condition", i+1, st.Name)
			continue
		}
		cond := "(" + st.Condition + ")"
		if len(excepts) > 0 {
			cond += " && !(" + strings.Join(excepts, " || ") + ")"
		}
		prog, _ := c.program(c.expand(cond), at, fmt.Sprintf("%s step %d (%s)", entry, i+1, st.Name))
		seq.Steps = append(seq.Steps, Step{Name: st.Name, Events: st.Events, cond: prog})
		for _, ev := range st.Events {
			if !seen[ev] {
				seen[ev] = true
				r.Events = append(r.Events, ev)
			}
		}
	}
	r.Sequence = seq
}

func (c *compiler) checkKeys(keys []string, at pos, entry, what string) {
	if len(keys) == 0 {
		c.fail(at, entry, "%s needs at least one attribute", what)
	}
	for _, k := range keys {
		if _, ok := lookupAttr(k); !ok && !inOpenFamily(k) {
			c.unknownName(at, entry, what, k)
		}
	}
}
