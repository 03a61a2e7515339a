package config

import (
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
