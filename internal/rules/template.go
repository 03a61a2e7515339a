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
// as <NA>, as in Falco.
func (t template) render(ev *Event) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.attr == "" {
			b.WriteString(p.text)
			continue
		}
		if v, ok := ev.lookup(p.attr); ok && v.Type() != pcommon.ValueTypeEmpty {
			b.WriteString(v.AsString())
		} else {
			b.WriteString("<NA>")
		}
	}
	return b.String()
}
