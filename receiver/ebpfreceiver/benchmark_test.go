package ebpfreceiver

import (
	"context"
	"fmt"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

const stormChildren = 500

// runStorm forks and execs /bin/true n times from one shell; returns its duration.
func runStorm(b *testing.B, n int) time.Duration {
	b.Helper()
	start := time.Now()
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done`, n))
	require.NoError(b, cmd.Run())
	return time.Since(start)
}

// BenchmarkExecStorm measures the exec storm's own throughput with the
// receiver off and on (default config, every process on the machine, records
// turned into plog and counted), side by side in one run.
func BenchmarkExecStorm(b *testing.B) {
	requireRoot(b)
	b.Run("receiver=off", func(b *testing.B) {
		var d time.Duration
		for b.Loop() {
			d += runStorm(b, stormChildren)
		}
		b.ReportMetric(float64(b.N*stormChildren)/d.Seconds(), "execs/s")
	})
	b.Run("receiver=on", func(b *testing.B) {
		var records atomic.Int64
		counter, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
			records.Add(int64(ld.LogRecordCount()))
			return nil
		})
		require.NoError(b, err)
		tt := newTelemetry(b)
		rcv := startReceiver(b, tt, counter, func(c *Config) { c.RingBufferSize = defaultRingBufferSize })
		var d time.Duration
		for b.Loop() {
			d += runStorm(b, stormChildren)
		}
		require.NoError(b, rcv.Shutdown(context.Background()))
		b.ReportMetric(float64(b.N*stormChildren)/d.Seconds(), "execs/s")
		b.ReportMetric(float64(records.Load())/d.Seconds(), "records/s")
	})
}

// BenchmarkDecode decodes real ring-buffer records captured during an exec
// storm: the per-event cost of user space before pdata.
func BenchmarkDecode(b *testing.B) {
	requireRoot(b)
	p, err := probe.Load(probe.Config{RingBufferSize: 8 << 20, MaxArgs: 16})
	require.NoError(b, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(b, err)
	defer rd.Close()
	runStorm(b, stormChildren)
	var samples [][]byte
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		raw, err := rd.ReadRaw()
		if err != nil {
			break
		}
		samples = append(samples, append([]byte(nil), raw...))
	}
	require.NotEmpty(b, samples)
	b.ReportAllocs()
	var ev probe.Event
	i := 0
	for b.Loop() {
		if err := probe.Decode(samples[i%len(samples)], &ev); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEventToLog is decode plus the mapping to a log record with the
// process cache: what the reader goroutine spends per event.
func BenchmarkEventToLog(b *testing.B) {
	raw := syntheticExec(b)
	r := &ebpfReceiver{procs: newProcCache(1024), clock: probe.NewClock()}
	logs, sl := newBatch()
	_ = logs
	var ev probe.Event
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		require.NoError(b, probe.Decode(raw, &ev))
		r.appendEvent(sl, &ev)
		if n++; n == maxBatch {
			logs, sl = newBatch()
			n = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
