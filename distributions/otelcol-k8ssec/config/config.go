// Package config holds the collector configurations built into the otelcol-k8ssec
// binary, so that it runs with no configuration file: `--config k8ssec:standalone`
// loads standalone.yaml from here through provider/embeddedprovider.
//
// Every *.yaml file in this directory is embedded; its name without the extension
// is the name a user asks for. backend/<name>.yaml is merged over <name> when
// BackendEnv is set (Conf).
package config // import "github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

//go:embed *.yaml backend/*.yaml
var files embed.FS

// BackendEnv is the one setting that sends a gateway tier's output to an OTLP
// backend as well as to its standard output.
const BackendEnv = "K8SSEC_BACKEND_ENDPOINT"

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

// Conf returns the embedded configuration called name as the collector loads it:
// when getenv(BackendEnv) is not empty and backend/<name>.yaml exists, that file
// merged over it (its lists replace the base's). ${env:...} references are left
// for the collector's resolver. backend is whether the overlay was merged.
func Conf(name string, getenv func(string) string) (conf *confmap.Conf, backend bool, err error) {
	data, err := Get(name)
	if err != nil {
		return nil, false, err
	}
	if conf, err = yamlConf(data); err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	overlay, err := files.ReadFile("backend/" + strings.TrimSuffix(name, ext) + ext)
	if err != nil || getenv(BackendEnv) == "" {
		return conf, false, nil
	}
	over, err := yamlConf(overlay)
	if err != nil {
		return nil, false, fmt.Errorf("backend/%s: %w", name, err)
	}
	if err := conf.Merge(over); err != nil {
		return nil, false, fmt.Errorf("merging backend/%s: %w", name, err)
	}
	return conf, true, nil
}

func yamlConf(data []byte) (*confmap.Conf, error) {
	ret, err := confmap.NewRetrievedFromYAML(data)
	if err != nil {
		return nil, err
	}
	return ret.AsConf()
}
