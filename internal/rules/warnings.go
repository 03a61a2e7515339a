package rules

import (
	"fmt"
	"strings"
)

// Warnings at load: names the vocabulary does not know, each with the
// closest one it does, since a typo would silently never match.

// Warning is a problem that does not stop rules loading: a name the
// vocabulary does not know.
type Warning struct {
	File   string
	Line   int
	Entry  string
	Reason string
}

func (w Warning) String() string {
	return (&Error{File: w.File, Line: w.Line, Entry: w.Entry, Reason: w.Reason}).Error()
}

// macroKey marks, in compiler.warned, a name some macro was warned for.
const macroKey = "macro\x00"

// unknownName reports a name the vocabulary lacks, once per entry (an
// exception's field is in its rule's condition too): a warning, or an error
// when attributes are strict.
func (c *compiler) unknownName(at pos, entry, what, name string) {
	// Macros compile before rules: a name reported at its macro is not
	// reported again at every rule the macro is expanded into.
	key := entry + "\x00" + name
	if c.warned[key] || c.warned[macroKey+name] {
		return
	}
	if c.warned == nil {
		c.warned = map[string]bool{}
	}
	c.warned[key] = true
	if strings.HasPrefix(entry, "macro ") {
		c.warned[macroKey+name] = true
	}
	reason := fmt.Sprintf("%s %q is not a known attribute", what, name)
	if s := c.closestName(name); s != "" {
		reason += fmt.Sprintf(" (did you mean %s?)", s)
	}
	if c.opts.StrictAttributes {
		c.fail(at, entry, "%s", reason)
		return
	}
	reason += "; it is read as the event carries it (dyn), null when absent"
	c.set.Warnings = append(c.set.Warnings, Warning{File: at.file, Line: at.line, Entry: entry, Reason: reason})
}

// closestName is the known attribute, list or macro nearest to name in edit
// distance, when near enough to be what was meant.
func (c *compiler) closestName(name string) string {
	best, bestD := "", len(name)/3+2
	try := func(cand string) {
		if d := editDistance(name, cand); d < bestD || d == bestD && cand < best {
			best, bestD = cand, d
		}
	}
	for cand := range attributeTypes {
		try(cand)
	}
	for _, f := range openFamilies { // k8s.pod.labels.team: a typo in the family's prefix
		for i := range len(name) {
			if name[i] == '.' && i+1 < len(name) && editDistance(name[:i+1], f) <= 2 {
				try(f + name[i+1:])
			}
		}
	}
	for cand := range c.p.lists {
		try(cand)
	}
	for cand := range c.p.macros {
		try(cand)
	}
	return best
}

// editDistance is Levenshtein's distance in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
