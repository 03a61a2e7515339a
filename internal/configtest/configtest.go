// Package configtest loads a component's configuration from its
// testdata/config.yaml the way the collector does, for config tests.
package configtest

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
)

// Factory is what every component factory offers.
type Factory interface {
	Type() component.Type
	CreateDefaultConfig() component.Config
}

// Load reads the entry TYPE/name (TYPE alone for "") of testdata/config.yaml
// over the factory's defaults and returns it with the result of Validate.
func Load[C component.Config](t *testing.T, f Factory, name string) (C, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := f.CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(f.Type(), name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(C), xconfmap.Validate(cfg)
}
