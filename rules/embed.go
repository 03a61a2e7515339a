// Package rules holds the default rule packs, embedded in the binary so that a
// configuration can name them ("k8s_audit" is k8s_audit.yaml) with no files to
// ship. The rule format is in README.md beside them; the packs are described in
// docs/rules.md.
package rules

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var packs embed.FS

// Pack returns the YAML of the default pack name.
func Pack(name string) ([]byte, bool) {
	b, err := packs.ReadFile(name + ".yaml")
	return b, err == nil
}

// PackNames lists the default packs, sorted.
func PackNames() []string {
	entries, _ := fs.ReadDir(packs, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}
