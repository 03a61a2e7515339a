package rules

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Source is one rule file: its name (a path, or "k8s_audit" for an embedded
// pack) for messages, and its YAML.
type Source struct {
	Name string
	Data []byte
}

// Error is one problem in a rule file, with where it is and why.
type Error struct {
	File   string
	Line   int
	Entry  string // the rule, list, macro or override name; empty if unknown
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Entry != "" {
		fmt.Fprintf(&b, "%s: ", e.Entry)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// The raw entries of a file, as written, with their positions.

type pos struct {
	file string
	line int
}

type exceptionSpec struct {
	Name      string   `yaml:"name"`
	Field     string   `yaml:"field"`
	Values    []string `yaml:"values"`
	Condition string   `yaml:"condition"`
	line      int
}

type thresholdSpec struct {
	By     []string      `yaml:"by"`
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
}

type throttleSpec struct {
	By     []string      `yaml:"by"`
	Period time.Duration `yaml:"period"`
}

type stepSpec struct {
	Name      string   `yaml:"name"`
	Events    []string `yaml:"events"`
	Condition string   `yaml:"condition"`
}

type sequenceSpec struct {
	By     []string      `yaml:"by"`
	Within time.Duration `yaml:"within"`
	Steps  []stepSpec    `yaml:"steps"`
}

// TestCase is an event a rule must match (Match) or must not; or, for
// sequences and thresholds, a series of events that must raise an alert or not.
type TestCase struct {
	Name      string         `yaml:"name"`
	Match     bool           `yaml:"match"`
	EventName string         `yaml:"event_name"`
	Event     map[string]any `yaml:"event"`
	Resource  map[string]any `yaml:"resource"`
	Body      string         `yaml:"body"` // the record's body (event.body)
	Series    []TestEvent    `yaml:"series"`
	Line      int            `yaml:"-"`
}

// TestEvent is one event of a test series, At after the first.
type TestEvent struct {
	EventName string         `yaml:"event_name"`
	At        time.Duration  `yaml:"at"`
	Event     map[string]any `yaml:"event"`
	Resource  map[string]any `yaml:"resource"`
	Body      string         `yaml:"body"`
}

type ruleSpec struct {
	Rule        string          `yaml:"rule"`
	ID          string          `yaml:"id"`
	Description string          `yaml:"description"`
	Events      []string        `yaml:"events"`
	Condition   string          `yaml:"condition"`
	Exceptions  []exceptionSpec `yaml:"exceptions"`
	Severity    string          `yaml:"severity"`
	Category    string          `yaml:"category"`
	Tags        []string        `yaml:"tags"`
	Covers      []string        `yaml:"covers"`
	Reference   string          `yaml:"reference"`
	Output      string          `yaml:"output"`
	Enabled     *bool           `yaml:"enabled"`
	Threshold   *thresholdSpec  `yaml:"threshold"`
	Sequence    *sequenceSpec   `yaml:"sequence"`
	Throttle    *throttleSpec   `yaml:"throttle"`
	Action      string          `yaml:"action"`
	Tests       []TestCase      `yaml:"tests"`
	pos         pos
	condLine    int
	actionPos   pos // where action was set: the rule's key, or an override's
	ruleset     *Ruleset
}

type listSpec struct {
	List   string   `yaml:"list"`
	Items  []string `yaml:"items"`
	Append bool     `yaml:"append"`
	pos    pos
}

type macroSpec struct {
	Macro     string `yaml:"macro"`
	Condition string `yaml:"condition"`
	pos       pos
}

type overrideSpec struct {
	Override   string          `yaml:"override"`
	Enabled    *bool           `yaml:"enabled"`
	Severity   string          `yaml:"severity"`
	Exceptions []exceptionSpec `yaml:"exceptions"`
	Action     string          `yaml:"action"`
	pos        pos
	actionLine int
}

// Ruleset names the pack or file a rule comes from.
type Ruleset struct {
	Name    string
	Version string
}

// parsed is everything read from all sources, before compiling.
type parsed struct {
	rules     []*ruleSpec
	lists     map[string]*listSpec
	listOrder []string
	macros    map[string]*macroSpec
	overrides []*overrideSpec
}

// allowedKeys per entry kind; anything else is a typo worth stopping for.
var allowedKeys = map[string]map[string]bool{
	"rule": set("rule", "id", "description", "events", "condition", "exceptions", "severity", "category",
		"tags", "covers", "reference", "output", "enabled", "threshold", "sequence", "throttle", "action", "tests"),
	"list":     set("list", "items", "append"),
	"macro":    set("macro", "condition"),
	"override": set("override", "enabled", "severity", "exceptions", "action"),
	"ruleset":  set("ruleset", "version"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// parse reads every source in order. Lists and macros of later files replace
// (or, with append, extend) earlier ones; overrides apply after all rules.
func parse(sources []Source) (*parsed, []error) {
	p := &parsed{lists: map[string]*listSpec{}, macros: map[string]*macroSpec{}}
	var errs []error
	ruleNames := map[string]pos{}
	for _, src := range sources {
		errs = append(errs, p.parseFile(src, ruleNames)...)
	}
	return p, errs
}

func (p *parsed) parseFile(src Source, ruleNames map[string]pos) []error {
	var errs []error
	fail := func(line int, entry, format string, args ...any) {
		errs = append(errs, &Error{File: src.Name, Line: line, Entry: entry, Reason: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src.Data, &doc); err != nil {
		fail(0, "", "not valid YAML: %v", err)
		return errs
	}
	if doc.Kind == 0 { // an empty file
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.SequenceNode {
		fail(top.Line, "", "a rules file is a list of entries (rule, list, macro, override)")
		return errs
	}
	ruleset := &Ruleset{Name: strings.TrimSuffix(filepath.Base(src.Name), filepath.Ext(src.Name))}
	for _, n := range top.Content {
		if n.Kind != yaml.MappingNode || len(n.Content) < 2 {
			fail(n.Line, "", "an entry is a mapping that starts with rule:, list:, macro: or override:")
			continue
		}
		kind, name := n.Content[0].Value, n.Content[1].Value
		allowed, ok := allowedKeys[kind]
		if !ok {
			fail(n.Line, "", "unknown entry %q: the first key is rule, list, macro, override or ruleset", kind)
			continue
		}
		label := kind + " " + quote(name)
		bad := false
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !allowed[k] {
				fail(n.Content[i].Line, label, "unknown key %q", k)
				bad = true
			}
		}
		if bad {
			continue
		}
		at := pos{src.Name, n.Line}
		switch kind {
		case "ruleset":
			var r struct {
				Ruleset string `yaml:"ruleset"`
				Version string `yaml:"version"`
			}
			if err := n.Decode(&r); err != nil {
				fail(n.Line, label, "%v", err)
				continue
			}
			ruleset = &Ruleset{Name: r.Ruleset, Version: r.Version}
		case "list":
			var l listSpec
			if err := n.Decode(&l); err != nil {
				fail(n.Line, label, "%v", err)
				continue
			}
			if !isIdentifier(l.List) || strings.HasPrefix(l.List, "_") {
				fail(n.Line, label, "a list name is an identifier (letters, digits, _; no dots; not starting with _)")
				continue
			}
			l.pos = at
			if prev, ok := p.lists[l.List]; ok && l.Append {
				prev.Items = append(prev.Items, l.Items...)
				continue
			} else if !ok && l.Append {
				fail(n.Line, label, "append to a list that no earlier file defines")
				continue
			} else if !ok {
				p.listOrder = append(p.listOrder, l.List)
			}
			p.lists[l.List] = &l
		case "macro":
			var m macroSpec
			if err := n.Decode(&m); err != nil {
				fail(n.Line, label, "%v", err)
				continue
			}
			if !isIdentifier(m.Macro) || strings.HasPrefix(m.Macro, "_") {
				fail(n.Line, label, "a macro name is an identifier (letters, digits, _; no dots; not starting with _)")
				continue
			}
			if strings.TrimSpace(m.Condition) == "" {
				fail(n.Line, label, "condition is required")
				continue
			}
			m.pos = at
			p.macros[m.Macro] = &m
		case "override":
			var o overrideSpec
			if err := n.Decode(&o); err != nil {
				fail(n.Line, label, "%v", err)
				continue
			}
			o.pos, o.actionLine = at, keyLine(n, "action", n.Line)
			setExceptionLines(n, o.Exceptions)
			p.overrides = append(p.overrides, &o)
		case "rule":
			var r ruleSpec
			if err := n.Decode(&r); err != nil {
				fail(n.Line, label, "%v", err)
				continue
			}
			if prev, dup := ruleNames[r.Rule]; dup {
				fail(n.Line, label, "a rule of this name is already defined at %s:%d (use override: to change it)", prev.file, prev.line)
				continue
			}
			if strings.TrimSpace(r.Rule) == "" {
				fail(n.Line, "", "rule: needs a name")
				continue
			}
			r.pos, r.ruleset = at, ruleset
			ruleNames[r.Rule] = at
			r.condLine = keyLine(n, "condition", n.Line)
			r.actionPos = pos{src.Name, keyLine(n, "action", n.Line)}
			setExceptionLines(n, r.Exceptions)
			setTestLines(n, r.Tests)
			p.rules = append(p.rules, &r)
		}
	}
	return errs
}

// keyLine returns the line of key's value in mapping n.
func keyLine(n *yaml.Node, key string, def int) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				return v.Line + 1 // a block scalar starts on the next line
			}
			return v.Line
		}
	}
	return def
}

func yamlValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func setExceptionLines(n *yaml.Node, ex []exceptionSpec) {
	if seq := yamlValue(n, "exceptions"); seq != nil {
		for i := range ex {
			if i < len(seq.Content) {
				ex[i].line = seq.Content[i].Line
			}
		}
	}
}

func setTestLines(n *yaml.Node, tests []TestCase) {
	if seq := yamlValue(n, "tests"); seq != nil {
		for i := range tests {
			if i < len(seq.Content) {
				tests[i].Line = seq.Content[i].Line
			}
		}
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// joinErrors flattens per-file errors into one error that lists them all.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
