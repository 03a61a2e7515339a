// Package embeddedprovider is a confmap provider for the collector configurations
// compiled into otelcol-k8ssec (distributions/otelcol-k8ssec/config).
//
// Scheme "k8ssec": `--config k8ssec:standalone` loads the embedded standalone.yaml.
// The loaded YAML may reference other providers (`${env:...}`, `${file:...}`) like
// any other configuration source; they are resolved afterwards by the collector.
// With K8SSEC_BACKEND_ENDPOINT set, a config that has a backend overlay
// (config/backend/<name>.yaml: the gateway's tiers) gets it merged over it, and
// the log says so: one setting turns the OTLP backend on (config.Conf).
package embeddedprovider // import "github.com/otelcol-k8ssec/otelcol-k8ssec/provider/embeddedprovider"

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
)

const schemeName = "k8ssec"

type provider struct {
	logger *zap.Logger
}

// NewFactory returns the factory of the "k8ssec" confmap provider:
//
//	k8ssec-uri = "k8ssec:" name   ; e.g. k8ssec:standalone
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(newProvider)
}

func newProvider(set confmap.ProviderSettings) confmap.Provider {
	logger := set.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return &provider{logger: logger}
}

func (p *provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, schemeName+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by %q provider", uri, schemeName)
	}
	conf, backend, err := config.Conf(name, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	if backend {
		p.logger.Info("Sending to the OTLP backend as well: "+config.BackendEnv+" is set",
			zap.String("config", uri), zap.String("merged", "backend/"+strings.TrimSuffix(name, ".yaml")+".yaml"))
	}
	return confmap.NewRetrieved(conf.ToStringMap())
}

func (*provider) Scheme() string {
	return schemeName
}

func (*provider) Shutdown(context.Context) error {
	return nil
}
