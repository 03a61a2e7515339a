package k8sauditreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/configtest"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	return configtest.Load[*Config](t, NewFactory(), name)
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.True(t, cfg.Webhook.Enabled)
	assert.Equal(t, "localhost:9765", cfg.Webhook.NetAddr.Endpoint)
	assert.Equal(t, "/k8s-audit", cfg.Webhook.Path)
	assert.Equal(t, int64(64<<20), cfg.Webhook.MaxRequestBodySize)
	assert.False(t, cfg.Webhook.TLS.HasValue(), "plain HTTP on loopback by default")
	assert.False(t, cfg.Files.HasValue(), "files are opt-in")
	assert.Equal(t, []string{"ResponseComplete", "Panic"}, cfg.Stages)
	assert.True(t, cfg.Redact.Enabled)
	assert.Equal(t, 1<<20, cfg.MaxEventSize)
}

func TestFullConfig(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:9443", cfg.Webhook.NetAddr.Endpoint)
	assert.Equal(t, "/audit", cfg.Webhook.Path)
	assert.Equal(t, int64(1048576), cfg.Webhook.MaxRequestBodySize)
	require.True(t, cfg.Webhook.TLS.HasValue())
	assert.Equal(t, "/etc/otelcol/apiserver-ca.crt", cfg.Webhook.TLS.Get().ClientCAFile)
	require.True(t, cfg.Files.HasValue())
	files := cfg.Files.Get()
	assert.Equal(t, []string{"/var/log/kubernetes/audit/*.log"}, files.Include)
	assert.Equal(t, "beginning", files.StartAt)
	require.NotNil(t, files.StorageID)
	assert.Equal(t, "file_storage", files.StorageID.String())
	assert.Equal(t, []string{"ResponseStarted", "ResponseComplete", "Panic"}, cfg.Stages)
	assert.False(t, cfg.Redact.Enabled)
	assert.Equal(t, 65536, cfg.MaxEventSize)
}

func TestFilesOnlyConfig(t *testing.T) {
	cfg, err := loadConfig(t, "files_only")
	require.NoError(t, err)
	assert.False(t, cfg.Webhook.Enabled)
	assert.Equal(t, "end", cfg.Files.Get().StartAt, "file_log's default start_at")
}

func TestInvalidConfigs(t *testing.T) {
	for name, want := range map[string][]string{
		"bad_stage": {`stages: unknown stage "Done"`},
		"nothing":   {"nothing to receive: the webhook is disabled and no files are configured"},
		"bad_path":  {`webhook.path "audit" must start with '/'`, "max_event_size must be positive, got 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			for _, w := range want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}
