package rules

import (
	"fmt"
	"strings"
)

// CoverAnchors are the public rule sets a rule's covers entries may name.
var CoverAnchors = []string{"falco", "tracee", "sigma", "crs"}

// checkCover checks one covers entry: "<anchor>:<the anchor's rule id or name>".
func checkCover(cv string) error {
	anchor, id, ok := strings.Cut(cv, ":")
	if !ok || strings.TrimSpace(id) == "" {
		return fmt.Errorf("%q: want <anchor>:<rule>, anchor one of %s", cv, strings.Join(CoverAnchors, ", "))
	}
	for _, a := range CoverAnchors {
		if anchor == a {
			return nil
		}
	}
	return fmt.Errorf("%q: unknown anchor %q (one of %s)", cv, anchor, strings.Join(CoverAnchors, ", "))
}
