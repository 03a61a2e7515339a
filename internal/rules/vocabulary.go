package rules

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
)

// The open vocabulary: schema.go types the attributes this distribution's
// receivers write, but a condition may read any other attribute (a filelog
// or otlp receiver's, a pod label): such a name is declared dyn, typed by the
// value the event carries, and reads as null when the event lacks it. Since a
// typo reads as an always-missing attribute too, every unknown name is a
// Warning with the closest known name; Options.StrictAttributes makes it an
// error instead.

// presencePrefix names the bool variables has(attr) is rewritten to:
// has(k8s.pod.name) reads _has.k8s.pod.name, true when the event carries
// the attribute on its record or resource.
const presencePrefix = "_has."

// openFamilies are attribute names made of a fixed prefix and a key that is
// anyone's (semconv's k8s.pod.label.<key>): read without a warning, and also
// as one map (k8s.pod.label["app.kubernetes.io/name"]), see prefixMap.
var openFamilies = []string{"k8s.pod.label.", "k8s.pod.annotation."}

func inOpenFamily(name string) bool {
	for _, f := range openFamilies {
		if strings.HasPrefix(name, f) && len(name) > len(f) {
			return true
		}
	}
	return false
}

// staticPrefix is the longest prefix of a dotted name that the vocabulary or
// a list names: where CEL's checker resolves it (the rest are field
// selections). Empty when no prefix is known.
func (c *compiler) staticPrefix(name string) string {
	for n := name; ; {
		if _, ok := attributeTypes[n]; ok {
			return n
		}
		if r, ok := c.set.names[n]; ok && r.kind == nameList {
			return n
		}
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			return ""
		}
		n = n[:i]
	}
}

// declareDyn makes name an attribute of dynamic type, if it is not one yet.
func (c *compiler) declareDyn(name string) (nameRef, []cel.EnvOption) {
	if r, ok := c.set.names[name]; ok {
		return r, nil
	}
	r := nameRef{kind: nameAttr, typ: typeDyn, index: c.set.attrs}
	c.set.attrs++
	c.set.names[name] = r
	return r, []cel.EnvOption{cel.Variable(name, cel.DynType)}
}

// vocabScan walks a parsed condition before it is checked: it declares the
// attributes the vocabulary lacks and rewrites has(attribute) to a presence
// variable. Comprehension variables in scope are not attributes.
type vocabScan struct {
	c       *compiler
	at      pos
	entry   string
	scope   map[string]int
	fac     celast.ExprFactory
	newVars []cel.EnvOption
	err     error // a has() that cannot be
}

// openVocabulary prepares a parsed condition for checking: see vocabScan.
func (c *compiler) openVocabulary(parsed *cel.Ast, at pos, entry string) error {
	s := &vocabScan{c: c, at: at, entry: entry, scope: map[string]int{}, fac: celast.NewExprFactory()}
	s.walk(parsed.NativeRep().Expr())
	if s.err != nil {
		return s.err
	}
	if len(s.newVars) == 0 {
		return nil
	}
	env, err := c.env.Extend(s.newVars...)
	if err != nil {
		return fmt.Errorf("declaring attributes: %w", err)
	}
	c.env = env
	return nil
}

// chain is the dotted name an identifier or a field selection on one spells
// (k8s.pod.name), and its root identifier.
func chain(e celast.Expr) (name, root string, ok bool) {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent(), e.AsIdent(), true
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return "", "", false
		}
		if n, r, ok := chain(sel.Operand()); ok {
			return n + "." + sel.FieldName(), r, true
		}
	}
	return "", "", false
}

func (s *vocabScan) walk(e celast.Expr) {
	switch e.Kind() {
	case celast.IdentKind, celast.SelectKind:
		if e.Kind() == celast.SelectKind && e.AsSelect().IsTestOnly() {
			s.presence(e)
			return
		}
		if name, root, ok := chain(e); ok {
			if s.scope[root] == 0 {
				s.read(name)
			}
			return
		}
		s.walk(e.AsSelect().Operand())
	case celast.CallKind:
		call := e.AsCall()
		if call.IsMemberFunction() {
			// optional.none(), math.greatest(...): a function's namespace.
			if name, root, ok := chain(call.Target()); !ok || s.scope[root] > 0 || !s.c.env.HasFunction(name+"."+call.FunctionName()) {
				s.walk(call.Target())
			}
		}
		for _, arg := range call.Args() {
			s.walk(arg)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			s.walk(el)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			s.walk(en.AsMapEntry().Key())
			s.walk(en.AsMapEntry().Value())
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			s.walk(f.AsStructField().Value())
		}
	case celast.ComprehensionKind:
		cp := e.AsComprehension()
		s.walk(cp.IterRange())
		s.walk(cp.AccuInit())
		vars := []string{cp.IterVar(), cp.AccuVar()}
		if cp.HasIterVar2() {
			vars = append(vars, cp.IterVar2())
		}
		for _, v := range vars {
			s.scope[v]++
		}
		s.walk(cp.LoopCondition())
		s.walk(cp.LoopStep())
		s.walk(cp.Result())
		for _, v := range vars {
			s.scope[v]--
		}
	}
}

// read handles a name the condition reads as a value.
func (s *vocabScan) read(name string) {
	if _, isType := s.c.env.CELTypeProvider().FindIdent(name); isType {
		return // int, string, ... in type(x) == string
	}
	family := inOpenFamily(name)
	if !family && s.c.staticPrefix(name) != "" {
		return // known, or a field of a known map
	}
	if !family && !strings.HasPrefix(name, presencePrefix) {
		s.c.unknownName(s.at, s.entry, "attribute", name)
	}
	_, vars := s.c.declareDyn(name)
	s.newVars = append(s.newVars, vars...)
}

// presence handles has(x.f). It tests an attribute's presence when x.f names
// one (known or not); it stays CEL's has() when x.f is a field of a map
// attribute (has(k8s.audit.request_object.spec)) or of a comprehension
// variable.
func (s *vocabScan) presence(e celast.Expr) {
	sel := e.AsSelect()
	base, root, ok := chain(sel.Operand())
	if !ok || s.scope[root] > 0 {
		s.walk(sel.Operand())
		return
	}
	name := base + "." + sel.FieldName()
	if isRecordField(name) {
		s.err = fmt.Errorf("has(%s): the record's own fields are always there; has() tests attributes", name)
		return
	}
	family := inOpenFamily(name)
	if prefix := s.c.staticPrefix(name); !family && prefix != "" && prefix != name {
		s.walk(sel.Operand())
		return
	}
	r, known := s.c.set.names[name]
	if !known || r.kind != nameAttr {
		if !family {
			s.c.unknownName(s.at, s.entry, "attribute", name)
		}
		var vars []cel.EnvOption
		r, vars = s.c.declareDyn(name)
		s.newVars = append(s.newVars, vars...)
	}
	pname := presencePrefix + name
	if _, ok := s.c.set.names[pname]; !ok {
		s.c.set.names[pname] = nameRef{kind: namePresent, index: r.index, attr: name}
		s.newVars = append(s.newVars, cel.Variable(pname, cel.BoolType))
	}
	e.SetKindCase(s.fac.NewIdent(e.ID(), pname))
}
