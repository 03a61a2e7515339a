package ebpfreceiver

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"golang.org/x/sys/unix"

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
		children := childrenCPU(b)
		for b.Loop() {
			d += runStorm(b, stormChildren)
		}
		b.ReportMetric(float64(b.N*stormChildren)/d.Seconds(), "execs/s")
		b.ReportMetric(float64((childrenCPU(b)-children).Microseconds())/float64(b.N*stormChildren), "workload-cpu-us/exec")
	})
	b.Run("receiver=on", func(b *testing.B) {
		counter, records := counting(b)
		rcv := startReceiver(b, newTelemetry(b), counter, func(c *Config) { c.RingBufferSize = defaultRingBufferSize })
		var d time.Duration
		children, self := childrenCPU(b), processCPU(b)
		for b.Loop() {
			d += runStorm(b, stormChildren)
		}
		time.Sleep(300 * time.Millisecond) // the last batch
		receiverCPU := processCPU(b) - self
		require.NoError(b, rcv.Shutdown(context.Background()))
		b.ReportMetric(float64(b.N*stormChildren)/d.Seconds(), "execs/s")
		b.ReportMetric(float64((childrenCPU(b)-children).Microseconds())/float64(b.N*stormChildren), "workload-cpu-us/exec")
		b.ReportMetric(float64(records.Load())/d.Seconds(), "records/s")
		b.ReportMetric(100*receiverCPU.Seconds()/d.Seconds(), "receiver-cpu-%")
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
// process cache: what the reader goroutine spends per event, for an exec and
// for a file open (by a process the cache knows).
func BenchmarkEventToLog(b *testing.B) {
	open := syntheticRecord(probe.KindFileOpen, fileData+12)
	le := binary.LittleEndian
	le.PutUint32(open[8:], 4242) // tgid
	le.PutUint32(open[104:], 12) // path length, NUL included
	copy(open[fileData:], "/etc/passwd\x00")
	for _, rec := range []struct {
		name string
		raw  []byte
	}{{"exec", syntheticExec(b)}, {"file.open", open}} {
		b.Run(rec.name, func(b *testing.B) {
			r := &ebpfReceiver{procs: newProcCache(1024), clock: probe.NewClock(), strings: newInterner(internSize)}
			r.procs.put(4242, &procInfo{exe: "/usr/bin/cat", commandLine: "cat /etc/passwd", execID: "node:0123abcd:1:4242"})
			batch := newEventBatch()
			var ev probe.Event
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := probe.Decode(rec.raw, &ev); err != nil { // not require: its b.Helper() costs a stack walk per call
					b.Fatal(err)
				}
				r.appendEvent(batch, &ev)
				if n++; n == maxBatch {
					batch = newEventBatch()
					n = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// openStorm opens and closes path n times from one thread: the syscall
// workload the file programs watch.
func openStorm(b *testing.B, path string, n int) time.Duration {
	d, _ := openStormCPU(b, path, n)
	return d
}

// openStormCPU is openStorm that also returns the CPU the opening thread
// used: the kernel's BPF programs run in it, charged as system time.
func openStormCPU(b *testing.B, path string, n int) (wall, cpu time.Duration) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadCPU(b)
	start := time.Now()
	for range n {
		fd, err := unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	return time.Since(start), threadCPU(b) - before
}

func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_THREAD, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU this process used: with openStormCPU's share taken
// out, what the receiver (reader goroutine, pdata, GC) costs.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childrenCPU is the CPU of the children waited for (the exec storm's shells).
func childrenCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	require.NoError(b, unix.Getrusage(unix.RUSAGE_CHILDREN, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// counting is a pipeline end that counts records.
func counting(b *testing.B) (consumer.Logs, *atomic.Int64) {
	var records atomic.Int64
	c, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		records.Add(int64(ld.LogRecordCount()))
		return nil
	})
	require.NoError(b, err)
	return c, &records
}

func lostTotal(b *testing.B, rcv any) uint64 {
	lost, err := rcv.(*ebpfReceiver).probe.LostCounts()
	require.NoError(b, err)
	var n uint64
	for _, l := range lost {
		n += l
	}
	return n
}

// BenchmarkOpenStorm opens a file of interest (/etc/hostname) as fast as one
// thread can, with the receiver off and on (default config), side by side:
// the workload's own rate, the records that reach the pipeline, and what the
// ring buffer lost.
func BenchmarkOpenStorm(b *testing.B) {
	requireRoot(b)
	const opens = 100_000
	b.Run("receiver=off", func(b *testing.B) {
		var d, cpu time.Duration
		for b.Loop() {
			w, c := openStormCPU(b, "/etc/hostname", opens)
			d, cpu = d+w, cpu+c
		}
		b.ReportMetric(float64(b.N*opens)/d.Seconds(), "opens/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*opens), "workload-cpu-ns/open")
	})
	b.Run("receiver=on", func(b *testing.B) {
		next, records := counting(b)
		rcv := startReceiver(b, newTelemetry(b), next, func(c *Config) { c.RingBufferSize = defaultRingBufferSize })
		var d, cpu time.Duration
		self := processCPU(b)
		for b.Loop() {
			w, c := openStormCPU(b, "/etc/hostname", opens)
			d, cpu = d+w, cpu+c
		}
		time.Sleep(300 * time.Millisecond) // the last batch
		receiverCPU := processCPU(b) - self - cpu
		lost := lostTotal(b, rcv)
		require.NoError(b, rcv.Shutdown(context.Background()))
		b.ReportMetric(float64(b.N*opens)/d.Seconds(), "opens/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*opens), "workload-cpu-ns/open")
		b.ReportMetric(float64(records.Load())/d.Seconds(), "records/s")
		b.ReportMetric(float64(receiverCPU.Nanoseconds())/float64(max(records.Load(), 1)), "receiver-cpu-ns/record")
		b.ReportMetric(float64(lost), "lost")
	})
}

// BenchmarkPaced100k offers 100,000 file events a second (opens of
// /etc/hostname, caught up every millisecond or so) to the receiver with the
// default ring buffer, for one second per iteration: "lost" is what the ring
// buffer dropped, "missing" what sent minus what reached the pipeline.
func BenchmarkPaced100k(b *testing.B) {
	requireRoot(b)
	next, records := counting(b)
	rcv := startReceiver(b, newTelemetry(b), next, func(c *Config) {
		c.RingBufferSize = defaultRingBufferSize
		c.Events = []string{eventFileOpen}
		c.FilePrefixes = []string{"/etc/hostname"}
	})
	defer func() { require.NoError(b, rcv.Shutdown(context.Background())) }()
	sent := 0
	var pacing time.Duration
	for b.Loop() {
		// Catch up to 100 events per elapsed millisecond, for one second.
		start := time.Now()
		for done := 0; done < 100_000; {
			due := min(100_000, int(time.Since(start).Microseconds()/10))
			if due > done {
				openStorm(b, "/etc/hostname", due-done)
				sent += due - done
				done = due
				continue
			}
			time.Sleep(100 * time.Microsecond)
		}
		pacing += time.Since(start)
	}
	require.Eventually(b, func() bool { return records.Load() >= int64(sent) }, 5*time.Second, 20*time.Millisecond, "records: %d of %d", records.Load(), sent)
	b.ReportMetric(float64(lostTotal(b, rcv)), "lost")
	b.ReportMetric(float64(int64(sent)-records.Load()), "missing")
	b.ReportMetric(float64(sent)/pacing.Seconds(), "offered/s")
}

// BenchmarkIdleMemory starts the receiver with its defaults (every event,
// 8 MiB ring, process cache seeded from /proc) and reports, once idle, the Go
// heap and runtime memory, and the kernel memory its BPF maps lock (ring
// buffer included), from /proc/self/fdinfo.
func BenchmarkIdleMemory(b *testing.B) {
	requireRoot(b)
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		rcv := startReceiver(b, newTelemetry(b), consumertest.NewNop(), func(c *Config) { c.RingBufferSize = defaultRingBufferSize })
		time.Sleep(time.Second)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(after.Sys)/(1<<20), "go-sys-MiB")
		b.ReportMetric(float64(bpfMemlock(b))/(1<<20), "bpf-MiB")
		require.NoError(b, rcv.Shutdown(context.Background()))
	}
}

// bpfMemlock sums the memlock of every BPF map this process holds, each
// once however many descriptors refer to it.
func bpfMemlock(b *testing.B) uint64 {
	entries, err := os.ReadDir("/proc/self/fdinfo")
	require.NoError(b, err)
	memlock := map[string]uint64{} // by map_id
	for _, e := range entries {
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil || !strings.Contains(string(info), "map_type:") {
			continue
		}
		var id string
		var n uint64
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "memlock:"); ok {
				n, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "map_id:"); ok {
				id = strings.TrimSpace(v)
			}
		}
		memlock[id] = n
	}
	var total uint64
	for _, n := range memlock {
		total += n
	}
	return total
}
