// Package benchtest measures a logs receiver reading a whole file, the way
// the receivers' benchmarks compare themselves with contrib's file_log.
package benchtest

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// Counting counts log records and nothing else, so that a benchmark measures
// the receiver, not what comes after it.
type Counting struct{ N atomic.Int64 }

func (c *Counting) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	c.N.Add(int64(ld.LogRecordCount()))
	return nil
}

func (c *Counting) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// ReadFile measures a receiver that create makes for path reading the whole
// file from its beginning: from Start until all records reached the
// consumer. It reports records per second as unit ("events/s", "lines/s").
func ReadFile(b *testing.B, path string, records int, unit string, create func(path string, next consumer.Logs) (receiver.Logs, error)) {
	st, err := os.Stat(path)
	require.NoError(b, err)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		next := &Counting{}
		rcv, err := create(path, next)
		require.NoError(b, err)
		require.NoError(b, rcv.Start(context.Background(), componenttest.NewNopHost()))
		for next.N.Load() < int64(records) {
			time.Sleep(time.Millisecond)
		}
		require.NoError(b, rcv.Shutdown(context.Background()))
	}
	PerSecond(b, records, unit)
}

// PerSecond reports n records per benchmark iteration as unit per second.
func PerSecond(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), unit)
}

// Filelog makes contrib's file_log receiver reading path from its beginning
// with operators: the baseline a user would configure instead of ours.
func Filelog(path string, next consumer.Logs, operators ...operator.Config) (receiver.Logs, error) {
	f := filelogreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*filelogreceiver.FileLogConfig)
	cfg.InputConfig.Include = []string{path}
	cfg.InputConfig.StartAt = "beginning"
	cfg.InputConfig.PollInterval = time.Millisecond
	cfg.Operators = operators
	return f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
}
