package filetail

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"
)

// Offsets are checkpointed in a real file_storage extension: a second Tailer
// on the same storage reads only what was appended after the first stopped.
// An extension that is not a storage extension fails Start clearly.
func TestOffsetsInStorageExtension(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	require.NoError(t, os.WriteFile(log, []byte("one\ntwo\n"), 0o644))
	cfg := fileconsumer.NewConfig()
	cfg.Include = []string{log}
	cfg.StartAt = "beginning"
	cfg.PollInterval = 10 * time.Millisecond
	owner := component.MustNewIDWithName("ingress_log", "test")
	id := storagetest.ID

	var mu sync.Mutex
	var got []string
	cb := func(_ context.Context, tokens [][]byte, _ map[string]any, _ int64, _ []int64) error {
		mu.Lock()
		defer mu.Unlock()
		for _, tok := range tokens {
			got = append(got, string(tok))
		}
		return nil
	}
	lines := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
	run := func(until []string) {
		storage := storagetest.Start(t, filepath.Join(dir, "storage"))
		defer func() { require.NoError(t, storage.Shutdown(context.Background())) }()
		tl := New()
		set := componenttest.NewNopTelemetrySettings()
		require.NoError(t, tl.Start(context.Background(), storagetest.Host(componenttest.NewNopHost(), storage), set, owner, *cfg, &id, cb))
		require.Eventually(t, func() bool { return assert.ObjectsAreEqual(until, lines()) }, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, tl.Shutdown())
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "storage"), 0o755))
	run([]string{"one", "two"})
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("three\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	run([]string{"one", "two", "three"})
	time.Sleep(100 * time.Millisecond) // ten polls: nothing is read twice
	assert.Equal(t, []string{"one", "two", "three"}, lines())

	nf := extensiontest.NewNopFactory()
	nop, err := nf.Create(context.Background(), extensiontest.NewNopSettings(nf.Type()), nf.CreateDefaultConfig())
	require.NoError(t, err)
	notStorage := storagetest.Host(componenttest.NewNopHost(), nop)
	err = New().Start(context.Background(), notStorage, componenttest.NewNopTelemetrySettings(), owner, *cfg, &id, cb)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a storage extension")
}
