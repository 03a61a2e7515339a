package rules

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// template is an alert output with %{attribute} placeholders, split once at load.
type template struct {
	parts []templatePart
}

type templatePart struct {
	text string
	attr string // a placeholder when not empty
}

// parseTemplate splits an output; unknown is called for a placeholder the
// vocabulary does not know (it still renders whatever the event carries).
func parseTemplate(s string, fail func(pos, string, string, ...any), unknown func(name string), at pos, entry string) (template, bool) {
	var t template
	for {
		i := strings.Index(s, "%{")
		if i < 0 {
			if s != "" {
				t.parts = append(t.parts, templatePart{text: s})
			}
			return t, true
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{text: s[:i]})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			fail(at, entry, "output: %%{ without a closing }")
			return t, false
		}
		name := s[i+2 : i+end]
		if _, known := lookupAttr(name); !known && !inOpenFamily(name) {
			unknown(name)
		}
		t.parts = append(t.parts, templatePart{attr: name})
		s = s[i+end+1:]
	}
}

// render fills the placeholders from the event; an absent attribute shows
// as <NA>, as in Falco. For a sequence, a placeholder the firing event lacks
// comes from the latest earlier step that has it: the shell that completes
// "pods/exec then a shell" does not know who ran kubectl exec, its audit step does.
func (t template) render(ev *Event, steps []Evidence) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.attr == "" {
			b.WriteString(p.text)
			continue
		}
		if v, ok := ev.lookup(p.attr); ok && v.Type() != pcommon.ValueTypeEmpty {
			b.WriteString(v.AsString())
		} else if v, ok := fromSteps(steps, p.attr); ok {
			b.WriteString(v.AsString())
		} else {
			b.WriteString("<NA>")
		}
	}
	return b.String()
}

func fromSteps(steps []Evidence, name string) (pcommon.Value, bool) {
	for i := len(steps) - 1; i >= 0; i-- {
		if v, ok := steps[i].Attrs.Get(name); ok && v.Type() != pcommon.ValueTypeEmpty {
			return v, true
		}
	}
	return pcommon.Value{}, false
}
