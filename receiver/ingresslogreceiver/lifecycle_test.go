package ingresslogreceiver

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// A storage extension missing from service.extensions fails Start with an
// error that names it; the collector then shuts every component down, this
// one too, and that must not panic (the failed Start already stopped it).
func TestStartFailsOnMissingStorage(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Include = []string{filepath.Join(t.TempDir(), "*.log")}
	missing := component.MustNewID("file_storage")
	cfg.StorageID = &missing
	set := receivertest.NewNopSettings(NewFactory().Type())
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mr, err := NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)

	err = lr.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"file_storage"`)
	assert.Contains(t, err.Error(), "service.extensions")

	assert.NotPanics(t, func() {
		assert.NoError(t, lr.Shutdown(context.Background()))
		assert.NoError(t, mr.Shutdown(context.Background()))
	})
}

// Shutdown without Start, and Shutdown twice, as the component contract allows.
func TestShutdownIsIdempotent(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Include = []string{filepath.Join(t.TempDir(), "*.log")}
	set := receivertest.NewNopSettings(NewFactory().Type())
	r, err := NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotPanics(t, func() {
		assert.NoError(t, r.Shutdown(context.Background()), "never started")
		assert.NoError(t, r.Shutdown(context.Background()), "again")
	})

	r, err = NewFactory().CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	assert.NotPanics(t, func() {
		assert.NoError(t, r.Shutdown(context.Background()))
		assert.NoError(t, r.Shutdown(context.Background()), "again")
	})
}
