// Package config holds the collector configurations built into the otelcol-k8ssec
// binary, so that it runs with no configuration file: `--config k8ssec:standalone`
// loads standalone.yaml from here through provider/embeddedprovider.
//
// Every *.yaml file in this directory is embedded; its name without the extension
// is the name a user asks for.
package config // import "github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

const ext = ".yaml"

// Names returns the names of the embedded configurations, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil { // cannot happen: the FS is built at compile time
		panic(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
			names = append(names, strings.TrimSuffix(e.Name(), ext))
		}
	}
	slices.Sort(names)
	return names
}

// Get returns the YAML of the embedded configuration called name ("standalone",
// or "standalone.yaml"). An unknown name is an error that lists the known ones.
func Get(name string) ([]byte, error) {
	base := strings.TrimSuffix(name, ext)
	if base == "" || strings.ContainsAny(base, `/\`) || base != path.Clean(base) || !slices.Contains(Names(), base) {
		return nil, fmt.Errorf("no embedded configuration named %q; known: %s", name, strings.Join(Names(), ", "))
	}
	return files.ReadFile(base + ext)
}
