package probe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// BenchmarkOpenKernelCost: what the open programs cost in the kernel, per
// open, from the kernel's own accounting (BPF_STATS_RUN_TIME): sys_enter
// (noting the arguments) and sys_exit (taking the file from the fd, walking
// its path, the prefix lookup, and for a watched file the record's copy to the
// ring). A watched file (/etc/hostname, under the default /etc prefix),
// an unwatched one five directories deep and one fourteen deep: the walk's
// cost grows with the depth, whether or not the file is reported. A procfs
// file also pays the sensitive-file check's name comparisons.
func BenchmarkOpenKernelCost(b *testing.B) {
	requireRoot(b)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	require.NoError(b, err)
	defer stats.Close()
	p, err := Load(Config{RingBufferSize: 8 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{"/etc"}})
	require.NoError(b, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(b, err)
	defer rd.Close()
	go func() { // drain, so that the ring never fills; ends when rd is closed
		for {
			if _, err := rd.ReadRaw(); err != nil {
				return
			}
		}
	}()

	shallow := filepath.Join(b.TempDir(), "a", "b")
	deep := filepath.Join(b.TempDir(), strings.Repeat("d/", 10)+"f")
	for _, f := range []string{shallow, deep} {
		require.NoError(b, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(b, os.WriteFile(f, nil, 0o644))
	}
	for _, c := range []struct{ name, path string }{
		{"watched=/etc/hostname", "/etc/hostname"},
		{"unwatched=depth5", shallow},
		{"unwatched=depth14", deep},
		// procfs: the sensitive-file check reads its dentry names (sensitive.h).
		{"unwatched=/proc/self/status", "/proc/self/status"},
	} {
		b.Run(c.name, func(b *testing.B) {
			enter0, exit0 := progStats(b, p.file.HandleOpenat), progStats(b, p.file.HandleOpenExit)
			for b.Loop() {
				fd, err := unix.Open(c.path, unix.O_RDONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
			enter, exit := progStats(b, p.file.HandleOpenat), progStats(b, p.file.HandleOpenExit)
			perRun := func(now, then *ebpf.ProgramStats) float64 {
				return float64((now.Runtime - then.Runtime).Nanoseconds()) / float64(max(now.RunCount-then.RunCount, 1))
			}
			b.ReportMetric(perRun(enter, enter0), "sys_enter-ns/open")
			b.ReportMetric(perRun(exit, exit0), "sys_exit-ns/open")
		})
	}
}

func progStats(b *testing.B, prog *ebpf.Program) *ebpf.ProgramStats {
	s, err := prog.Stats()
	require.NoError(b, err)
	return s
}
