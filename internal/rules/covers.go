package rules

import (
	"fmt"
	"strings"
)

// CoverAnchors are the public rule sets a rule's covers entries may name.
var CoverAnchors = []string{"falco", "tracee", "sigma", "crs"}

// PartlySuffix marks a covers entry whose anchor the rule detects only in
// part (some of its cases, or fewer contexts): "falco:Run shell untrusted (partly)".
const PartlySuffix = " (partly)"

// Cover is one parsed covers entry.
type Cover struct {
	Anchor string // falco, tracee, sigma, crs
	ID     string // the anchor rule's name (falco) or id
	Partly bool
}

// ParseCover parses one covers entry: "<anchor>:<the anchor's rule id or
// name>", optionally ending in PartlySuffix. Whether the rule exists in the
// anchor's lists is checked by the coverage test (rules/coverage_test.go),
// which has the lists; the loader checks only the shape.
func ParseCover(cv string) (Cover, error) {
	anchor, id, ok := strings.Cut(cv, ":")
	c := Cover{Anchor: anchor}
	c.ID, c.Partly = strings.CutSuffix(id, PartlySuffix)
	if !ok || strings.TrimSpace(c.ID) == "" {
		return c, fmt.Errorf("%q: want <anchor>:<rule>[%s], anchor one of %s", cv, PartlySuffix, strings.Join(CoverAnchors, ", "))
	}
	if c.ID != strings.TrimSpace(c.ID) {
		return c, fmt.Errorf("%q: space around the rule's name", cv)
	}
	for _, a := range CoverAnchors {
		if anchor == a {
			return c, nil
		}
	}
	return c, fmt.Errorf("%q: unknown anchor %q (one of %s)", cv, anchor, strings.Join(CoverAnchors, ", "))
}

// checkCover checks one covers entry's shape.
func checkCover(cv string) error {
	_, err := ParseCover(cv)
	return err
}
