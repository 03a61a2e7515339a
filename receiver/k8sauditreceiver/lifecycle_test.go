package k8sauditreceiver

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver/internal/metadatatest"
)

// A files storage missing from service.extensions fails Start, after the
// webhook started, with an error that names it; the collector's Shutdown
// that follows must neither panic nor fail.
func TestStartFailsOnMissingStorage(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Webhook.NetAddr.Endpoint = freeAddr(t)
	files := cfg.Files.GetOrInsertDefault()
	files.Include = []string{filepath.Join(t.TempDir(), "audit*.log")}
	files.StorageID = &storagetest.ID
	cfg.Files = configoptional.Some(*files)
	require.NoError(t, cfg.Validate())
	rcv, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), cfg, consumertest.NewNop())
	require.NoError(t, err)

	err = rcv.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"file_storage"`)
	assert.Contains(t, err.Error(), "service.extensions")
	assert.NotPanics(t, func() { assert.NoError(t, rcv.Shutdown(context.Background())) })
}

// A second Shutdown after a good Start with checkpoints does nothing: the
// storage client is not closed twice.
func TestShutdownTwice(t *testing.T) {
	fr := startFileReceiver(t, newTelemetry(t), consumertest.NewNop(), t.TempDir(), t.TempDir())
	require.NoError(t, fr.rcv.Shutdown(context.Background()))
	assert.NotPanics(t, func() { assert.NoError(t, fr.rcv.Shutdown(context.Background())) })
	require.NoError(t, fr.storage.Shutdown(context.Background()))
}
