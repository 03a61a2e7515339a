package probe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// BenchmarkEnforcementOverhead: the exec program's kernel cost per exec
// (BPF_STATS_RUN_TIME), and the wall time of a fork+exec+wait of /bin/true,
// with enforcement off and with an executable policy of 10,000 kill paths and
// 10,000 file identities (none matching, so every exec pays the lookups and
// runs). The open programs run beside it: enforcement adds nothing to opens.
func BenchmarkEnforcementOverhead(b *testing.B) {
	requireRoot(b)
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	require.NoError(b, err)
	defer stats.Close()
	for _, entries := range []int{0, 10000} {
		b.Run(fmt.Sprintf("policy=%d", entries), func(b *testing.B) {
			cfg := Config{RingBufferSize: 8 << 20, MaxArgs: 4, FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{"/etc"}}
			for i := range entries {
				cfg.KillPaths = append(cfg.KillPaths, fmt.Sprintf("/opt/k8ssec-bench/bin/tool-%05d", i))
			}
			p, err := Load(cfg)
			require.NoError(b, err)
			defer p.Close()
			for i := range entries { // identities of files that do not exist: every lookup misses
				require.NoError(b, p.shared.policyFiles.Put(processFileId{Ino: uint64(1<<40 + i), Dev: 1}, policyKill))
			}
			rd, err := p.NewReader()
			require.NoError(b, err)
			defer rd.Close()
			go func() {
				for {
					if _, err := rd.ReadRaw(); err != nil {
						return
					}
				}
			}()
			exec0, open0 := progStats(b, p.process.HandleExec), progStats(b, p.file.HandleOpenExit)
			start := time.Now()
			for b.Loop() {
				if err := exec.Command("/bin/true").Run(); err != nil {
					b.Fatal(err)
				}
				fd, err := unix.Open("/etc/hostname", unix.O_RDONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
			elapsed := time.Since(start)
			execs, opens := progStats(b, p.process.HandleExec), progStats(b, p.file.HandleOpenExit)
			perRun := func(now, then *ebpf.ProgramStats) float64 {
				return float64((now.Runtime - then.Runtime).Nanoseconds()) / float64(max(now.RunCount-then.RunCount, 1))
			}
			b.ReportMetric(perRun(execs, exec0), "exec-prog-ns/exec")
			b.ReportMetric(perRun(opens, open0), "open-exit-ns/open")
			b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/fork+exec+open")
			kills, err := p.KillCount()
			require.NoError(b, err)
			require.Zero(b, kills, "nothing in the policy ran")
		})
	}
}
