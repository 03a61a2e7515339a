package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestNamesIncludesStandalone(t *testing.T) {
	assert.Contains(t, Names(), "standalone")
}

func TestEveryEmbeddedConfigIsCollectorYAML(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			data, err := Get(name)
			require.NoError(t, err)
			ret, err := confmap.NewRetrievedFromYAML(data)
			require.NoError(t, err)
			conf, err := ret.AsConf()
			require.NoError(t, err)
			for _, section := range []string{"receivers", "exporters", "service::pipelines"} {
				assert.True(t, conf.IsSet(section), "%s.yaml has no %s section", name, section)
			}
		})
	}
}

func TestGet(t *testing.T) {
	a, err := Get("standalone")
	require.NoError(t, err)
	b, err := Get("standalone.yaml")
	require.NoError(t, err)
	assert.Equal(t, a, b)

	for _, bad := range []string{"", "nope", "../config", "./standalone", ".yaml", "standalone/"} {
		_, err := Get(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "known: ")
		assert.Contains(t, err.Error(), "standalone")
	}
}

// The gateway acknowledges what kube_events and k8s_audit hand it (kube_events
// checkpoints past it, the apiserver drops its audit batch): no processor of
// their pipeline may then hold it in memory only, and every exporter that
// ships it queues it in storage first, so that a killed gateway loses nothing
// it acknowledged.
func TestGatewayKeepsWhatItAcknowledged(t *testing.T) {
	for _, backend := range []string{"", "backend.example.com:4317"} {
		conf, merged, err := Conf("gateway", env(backend))
		require.NoError(t, err)
		require.Equal(t, backend != "", merged)
		keepsWhatItAcknowledged(t, conf)
	}
}

func keepsWhatItAcknowledged(t *testing.T, conf *confmap.Conf) {
	var checked int
	for name, p := range conf.Get("service::pipelines").(map[string]any) {
		pipeline := p.(map[string]any)
		if !slices.ContainsFunc(pipeline["receivers"].([]any), func(r any) bool { return r == "kube_events" || r == "k8s_audit" }) {
			continue
		}
		checked++
		for _, proc := range pipeline["processors"].([]any) {
			assert.NotRegexp(t, `^batch(/|$)`, proc, "pipeline %s: a batch processor acknowledges what it only holds in memory", name)
		}
		for _, exp := range pipeline["exporters"].([]any) {
			if strings.HasPrefix(exp.(string), "debug") {
				continue // writes to the log, ships nothing
			}
			if conf.IsSet("connectors::" + exp.(string)) {
				continue // counts alerts into metrics (a restart restarts the counters); ships no record
			}
			if conf.Get("exporters::"+exp.(string)+"::sending_queue::enabled") == false {
				continue // no queue: the pipeline returns once the exporter has written
			}
			assert.Equal(t, "file_storage", conf.Get("exporters::"+exp.(string)+"::sending_queue::storage"),
				"pipeline %s: exporter %s must queue in storage", name, exp)
		}
	}
	assert.Positive(t, checked)
}

// The gateway's tiers split one rule list (docs/install.md, "The gateway's two tiers"):
// a rule the front routes for must be loaded where the copies go, and the
// front must run only what the rules tier does not.
func TestGatewayTiersShareTheirRules(t *testing.T) {
	processors := func(name string) *confmap.Conf {
		data, err := Get(name)
		require.NoError(t, err)
		ret, err := confmap.NewRetrievedFromYAML(data)
		require.NoError(t, err)
		conf, err := ret.AsConf()
		require.NoError(t, err)
		return conf
	}
	front, rules := processors("gateway"), processors("gateway-rules")
	want := rules.Get("processors::security_rules::rules")
	require.NotEmpty(t, want)
	assert.Equal(t, "rules", rules.Get("processors::security_rules::tier"))
	assert.Equal(t, "front", front.Get("processors::security_rules::tier"))
	assert.Equal(t, "route", front.Get("processors::security_rules/route::tier"))
	assert.Equal(t, want, front.Get("processors::security_rules::rules"))
	assert.Equal(t, want, front.Get("processors::security_rules/route::rules"))
	assert.Equal(t, []any{"security_rules/route"}, front.Get("service::pipelines::logs/route::processors").([]any)[1:])
	assert.Equal(t, []any{"loadbalancing/rules"}, front.Get("service::pipelines::logs/route::exporters"))
}

// env is a getenv with BackendEnv set to backend ("" = unset).
func env(backend string) func(string) string {
	return func(k string) string {
		if k == BackendEnv {
			return backend
		}
		return ""
	}
}

// Out of the box a gateway tier writes each alert to its standard output and
// exports nowhere else; K8SSEC_BACKEND_ENDPOINT alone adds the OTLP backend.
// (e2e/deploy_test.go validates both with the built binary's components.)
func TestGatewayBackendIsOptIn(t *testing.T) {
	for _, name := range []string{"gateway", "gateway-rules"} {
		t.Run(name, func(t *testing.T) {
			conf, merged, err := Conf(name, env(""))
			require.NoError(t, err)
			assert.False(t, merged)
			assert.False(t, conf.IsSet("exporters::otlp_grpc/backend"), "no backend unless it is set")
			assert.Equal(t, "stdout", conf.Get("exporters::security_alerts/stdout::format"))
			// Alerts are counted for Prometheus (routing/alerts) with or without a backend.
			assert.Equal(t, []any{"security_alerts/stdout", "debug", "routing/alerts"}, conf.Get("service::pipelines::logs::exporters"))

			conf, merged, err = Conf(name, env("backend.example.com:4317"))
			require.NoError(t, err)
			assert.True(t, merged)
			assert.Equal(t, "${env:K8SSEC_BACKEND_ENDPOINT}", conf.Get("exporters::otlp_grpc/backend::endpoint"))
			assert.Equal(t, []any{"otlp_grpc/backend", "security_alerts/stdout", "debug", "routing/alerts"}, conf.Get("service::pipelines::logs::exporters"))
			if name == "gateway" {
				assert.Equal(t, []any{"otlp_grpc/backend", "prometheus"}, conf.Get("service::pipelines::metrics::exporters"))
				// The merge replaces lists and leaves the rest of the base.
				assert.Equal(t, []any{"loadbalancing/rules"}, conf.Get("service::pipelines::logs/route::exporters"))
				assert.Equal(t, []any{"k8s_audit", "kube_events", "otlp"}, conf.Get("service::pipelines::logs::receivers"))
			}
		})
	}
	// A config without an overlay is the same with the setting.
	a, _, err := Conf("agent", env(""))
	require.NoError(t, err)
	b, merged, err := Conf("agent", env("backend.example.com:4317"))
	require.NoError(t, err)
	assert.False(t, merged)
	assert.Equal(t, a.ToStringMap(), b.ToStringMap())
}
