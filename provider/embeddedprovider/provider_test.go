package embeddedprovider

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
)

func newTestProvider(t *testing.T) confmap.Provider {
	t.Helper()
	p := NewFactory().Create(confmap.ProviderSettings{Logger: zap.NewNop()})
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func TestScheme(t *testing.T) {
	assert.Equal(t, "k8ssec", newTestProvider(t).Scheme())
}

func TestRetrieveStandalone(t *testing.T) {
	ret, err := newTestProvider(t).Retrieve(context.Background(), "k8ssec:standalone", nil)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	assert.True(t, conf.IsSet("receivers::k8s_audit::webhook"))
	assert.Equal(t, "/k8s-audit", conf.Get("receivers::k8s_audit::webhook::path"))
	// ${env:...} references are left for the resolver to expand.
	assert.Equal(t, "${env:K8SSEC_AUDIT_ENDPOINT:-localhost:9765}", conf.Get("receivers::k8s_audit::webhook::endpoint"))
	assert.Equal(t, []any{"k8s_audit", "ebpf"}, conf.Get("service::pipelines::logs::receivers"))
	assert.Equal(t, []any{"memory_limiter", "security_rules", "batch"}, conf.Get("service::pipelines::logs::processors"))
}

func TestRetrieveEveryEmbeddedConfig(t *testing.T) {
	p := newTestProvider(t)
	for _, name := range config.Names() {
		ret, err := p.Retrieve(context.Background(), "k8ssec:"+name, nil)
		require.NoError(t, err, name)
		_, err = ret.AsConf()
		require.NoError(t, err, name)
	}
}

func TestRetrieveUnknownNameListsKnown(t *testing.T) {
	_, err := newTestProvider(t).Retrieve(context.Background(), "k8ssec:nosuch", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `k8ssec:nosuch`)
	assert.Contains(t, err.Error(), `no embedded configuration named "nosuch"`)
	assert.Contains(t, err.Error(), "standalone")
}

func TestRetrieveWrongScheme(t *testing.T) {
	_, err := newTestProvider(t).Retrieve(context.Background(), "file:standalone.yaml", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `not supported by "k8ssec" provider`)
}

// The resolver is how the collector uses the provider: --config k8ssec:standalone
// with the env provider expanding the overrides inside the embedded YAML.
func TestResolverExpandsEnvInEmbeddedConfig(t *testing.T) {
	t.Setenv("K8SSEC_AUDIT_ENDPOINT", "127.0.0.1:19765")
	r, err := confmap.NewResolver(confmap.ResolverSettings{
		URIs:              []string{"k8ssec:standalone"},
		ProviderFactories: []confmap.ProviderFactory{NewFactory(), envprovider.NewFactory()},
		DefaultScheme:     "env",
	})
	require.NoError(t, err)
	conf, err := r.Resolve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:19765", conf.Get("receivers::k8s_audit::webhook::endpoint"))
	assert.Equal(t, "./_data/k8ssec-events.jsonl", conf.Get("exporters::file::path"))
	require.NoError(t, r.Shutdown(context.Background()))
}

// K8SSEC_BACKEND_ENDPOINT alone turns a gateway tier's OTLP backend on.
func TestRetrieveGatewayBackendOptIn(t *testing.T) {
	p := newTestProvider(t)
	t.Setenv("K8SSEC_BACKEND_ENDPOINT", "")
	ret, err := p.Retrieve(context.Background(), "k8ssec:gateway", nil)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
	assert.False(t, conf.IsSet("exporters::otlp_grpc/backend"))
	assert.Equal(t, []any{"security_alerts/stdout", "debug", "routing/alerts"}, conf.Get("service::pipelines::logs::exporters"))

	t.Setenv("K8SSEC_BACKEND_ENDPOINT", "otel.example.com:4317")
	ret, err = p.Retrieve(context.Background(), "k8ssec:gateway", nil)
	require.NoError(t, err)
	conf, err = ret.AsConf()
	require.NoError(t, err)
	assert.Equal(t, "${env:K8SSEC_BACKEND_ENDPOINT}", conf.Get("exporters::otlp_grpc/backend::endpoint"))
	assert.Equal(t, []any{"otlp_grpc/backend", "security_alerts/stdout", "debug", "routing/alerts"}, conf.Get("service::pipelines::logs::exporters"))
}
