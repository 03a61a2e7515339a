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
	data, err := Get("gateway")
	require.NoError(t, err)
	ret, err := confmap.NewRetrievedFromYAML(data)
	require.NoError(t, err)
	conf, err := ret.AsConf()
	require.NoError(t, err)
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
