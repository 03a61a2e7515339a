// Package embeddedprovider is a confmap provider for the collector configurations
// compiled into otelcol-k8ssec (distributions/otelcol-k8ssec/config).
//
// Scheme "k8ssec": `--config k8ssec:standalone` loads the embedded standalone.yaml.
// The loaded YAML may reference other providers (`${env:...}`, `${file:...}`) like
// any other configuration source; they are resolved afterwards by the collector.
package embeddedprovider // import "github.com/otelcol-k8ssec/otelcol-k8ssec/provider/embeddedprovider"

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
)

const schemeName = "k8ssec"

type provider struct{}

// NewFactory returns the factory of the "k8ssec" confmap provider:
//
//	k8ssec-uri = "k8ssec:" name   ; e.g. k8ssec:standalone
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(newProvider)
}

func newProvider(confmap.ProviderSettings) confmap.Provider {
	return &provider{}
}

func (*provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, schemeName+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by %q provider", uri, schemeName)
	}
	data, err := config.Get(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	return confmap.NewRetrievedFromYAML(data)
}

func (*provider) Scheme() string {
	return schemeName
}

func (*provider) Shutdown(context.Context) error {
	return nil
}
