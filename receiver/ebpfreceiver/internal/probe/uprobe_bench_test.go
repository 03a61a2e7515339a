package probe

import (
	"os/exec"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// loadDraining loads cfg and reads its ring until the benchmark ends, so
// that the ring never fills.
func loadDraining(b *testing.B, cfg Config) *Probe {
	b.Helper()
	p, err := Load(cfg)
	require.NoError(b, err)
	b.Cleanup(func() { p.Close() })
	rd, err := p.NewReader()
	require.NoError(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := rd.ReadRaw(); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { // the ring is unmapped at Close: the reading goroutine must have returned
		_ = rd.Stop()
		<-done
		rd.Close()
	})
	return p
}

// BenchmarkUprobeCost: what a uprobe adds to each call of the function it
// probes, in the calling thread: the breakpoint's trap into the kernel and
// back, and the program (header, arguments, the record to the ring). The
// target is testdata/uprobe_target.c, run once with b.N iterations (its
// start is in the timing, a few hundred microseconds over b.N), each calling
// k8ssec_probe_me(long, char *, long, char *) and k8ssec_name(int) once:
//   - detached: no probe;
//   - entry/filtered: k8ssec_probe_me probed, its records dropped in the
//     kernel (ignore_comms): the trap and the filter;
//   - entry/reported: every call reported with two ints and two strings
//     (one cut at 127 bytes);
//   - return/reported: a uretprobe on k8ssec_name, its returned string.
//
// The per-hit cost is ns/op minus detached's. bpf-ns/hit is the program's
// own share (the kernel's BPF_STATS_RUN_TIME). A C program, not a Go function
// in the test binary: go test strips the symbol table of the binaries it
// runs, and the arguments are read with the System V ABI.
func BenchmarkUprobeCost(b *testing.B) {
	requireRoot(b)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	require.NoError(b, err)
	defer stats.Close()
	target := buildTarget(b)
	entry := Uprobe{Binary: target, Symbol: "k8ssec_probe_me", Args: []UprobeArg{UprobeArgInt, UprobeArgString, UprobeArgInt, UprobeArgString}}
	ret := Uprobe{Binary: target, Symbol: "k8ssec_name", Return: true, Args: []UprobeArg{UprobeArgString}}
	run := func(b *testing.B) {
		cmd := exec.Command(target, strconv.Itoa(b.N))
		b.ResetTimer()
		require.NoError(b, cmd.Run())
		b.StopTimer()
	}
	b.Run("detached", run)
	for _, c := range []struct {
		name   string
		probe  Uprobe
		ignore []string
	}{
		{"entry/filtered", entry, []string{"uprobe_target"}},
		{"entry/reported", entry, nil},
		{"return/reported", ret, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := loadDraining(b, Config{RingBufferSize: 8 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
				IgnoreComms: c.ignore, Uprobes: []Uprobe{c.probe}})
			prog := p.uprobe.HandleUprobe
			if c.probe.Return {
				prog = p.uprobe.HandleUretprobe
			}
			before := progStats(b, prog)
			lost0, err := p.LostCounts()
			require.NoError(b, err)
			run(b)
			after := progStats(b, prog)
			runs := after.RunCount - before.RunCount
			b.ReportMetric(float64((after.Runtime-before.Runtime).Nanoseconds())/float64(max(runs, 1)), "bpf-ns/hit")
			b.ReportMetric(float64(runs)/float64(b.N), "hits/op")
			lost, err := p.LostCounts()
			require.NoError(b, err)
			b.ReportMetric(float64(lost[KindUprobe]-lost0[KindUprobe])/float64(b.N), "lost/op")
		})
	}
}
