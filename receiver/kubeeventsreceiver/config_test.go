package kubeeventsreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, "serviceAccount", cfg.AuthType)
	assert.Equal(t, []string{apiCore}, cfg.APIs)
	assert.Equal(t, startAtEnd, cfg.StartAt)
	assert.True(t, cfg.LeaderElection.Enabled)
	assert.True(t, cfg.Pods.Enabled)
	assert.Nil(t, cfg.StorageID)
}

func TestConfigFull(t *testing.T) {
	cfg := loadConfig(t, "full")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, []string{apiCore, apiEvents}, cfg.APIs)
	assert.Equal(t, "file_storage", cfg.StorageID.String())
	assert.Equal(t, "monitoring", cfg.LeaderElection.leaseNamespace())
	assert.Equal(t, "replica-a", cfg.LeaderElection.identity())
	assert.Equal(t, 20*time.Second, cfg.LeaderElection.RenewDeadline)
	assert.Equal(t, 8, cfg.Pods.MaxLabels)
	assert.Equal(t, 2*time.Second, cfg.Pods.LookupTimeout)
	assert.Equal(t, 500*time.Millisecond, cfg.Backoff.InitialInterval)
}

// TestConfigInvalid: every problem is reported at once.
func TestConfigInvalid(t *testing.T) {
	err := xconfmap.Validate(loadConfig(t, "bad"))
	require.Error(t, err)
	for _, want := range []string{`auth_type "none"`, `unknown API "v2"`, `"Not_A_Namespace"`, `start_at "middle"`,
		"lease_duration (5s) > renew_deadline (10s)", "lookup_timeout must be positive", "dedupe_cache_size must be positive"} {
		assert.ErrorContains(t, err, want)
	}
}
