package ingresslogreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/metadatatest"
)

func (f *fileStates) pendingFiles() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.partial)
}

// Container logs come and go with pods, some ending on the first piece of a
// line split by the runtime: once such a file is gone its piece is dropped,
// and counted, instead of being kept for ever. A file that is still there
// keeps its piece however long the rest takes.
func TestPartialLinesOfGoneFilesAreDropped(t *testing.T) {
	grace := partialGrace
	t.Cleanup(func() { partialGrace = grace }) // after the receiver's Shutdown
	partialGrace = 50 * time.Millisecond

	dir := t.TempDir()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Include = []string{filepath.Join(dir, "*.log")}
	cfg.StartAt = "beginning"
	cfg.PollInterval = 10 * time.Millisecond
	cfg.Container = containerCRI
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	rcv, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	files := &rcv.(*ingressReceiver).files

	// The file that stays: its line is split, the rest comes at the end.
	stays := filepath.Join(dir, "stays.log")
	long := accessLine(0, "/"+strings.Repeat("a", 300), 200)
	filetest.AppendLines(t, stays, "2026-11-29T10:11:12.000000001Z stdout P "+long[:100])

	const rounds, perRound = 3, 20
	piece := strings.Repeat("x", 64<<10)
	for round := range rounds {
		var paths []string
		for i := range perRound {
			p := filepath.Join(dir, fmt.Sprintf("pod-%d-%d.log", round, i))
			filetest.AppendLines(t, p,
				"2026-11-29T10:11:12.000000001Z stdout F "+accessLine(i, "/", 200),
				"2026-11-29T10:11:12.000000002Z stdout P "+piece)
			paths = append(paths, p)
		}
		require.Eventually(t, func() bool { return files.pendingFiles() == perRound+1 }, 10*time.Second, 5*time.Millisecond,
			"round %d: every file's piece is pending", round)
		for _, p := range paths {
			require.NoError(t, os.Remove(p))
		}
		require.Eventually(t, func() bool { return files.pendingFiles() == 1 }, 10*time.Second, 5*time.Millisecond,
			"round %d: the pieces of the removed files are dropped, have %d", round, files.pendingFiles())
	}

	filetest.AppendLines(t, stays, "2026-11-29T10:11:12.000000002Z stdout F "+long[100:])
	require.Eventually(t, func() bool {
		for _, r := range records(sink) {
			if str(r.Attributes(), "url.path") == "/"+strings.Repeat("a", 300) {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the file that stayed kept its piece")
	assert.Zero(t, files.pendingFiles())

	metadatatest.AssertEqualReceiverIngressLogPartialLinesDropped(t, tt,
		[]metricdata.DataPoint[int64]{{Value: rounds * perRound}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
