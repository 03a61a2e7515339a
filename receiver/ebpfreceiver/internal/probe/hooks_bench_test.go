//go:build amd64

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

// BenchmarkHookKernelCostUnderQemu boots Debian's 6.12 and runs
// BenchmarkHookKernelCost there, once (-benchtime 1x: each run is a boot):
//
//	go test -run '^$' -bench HookKernelCostUnderQemu -benchtime 1x ./receiver/ebpfreceiver/internal/probe
//
// The VM emulates its CPU (no KVM): compare the hook with the tracepoint
// programs of the same run, not with this machine's numbers.
func BenchmarkHookKernelCostUnderQemu(b *testing.B) {
	vm := newQemuVM(b)
	out := vm.run(b, testKernel(b, "6.12"), "^$", "-test.bench", "BenchmarkHookKernelCost$", "-test.benchtime", "20000x")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "ns/open") {
			b.Log(strings.TrimSpace(line))
		}
	}
}

// BenchmarkHookKernelCost: what security_file_open costs in the kernel per
// open, by mode, from the kernel's own accounting (BPF_STATS_RUN_TIME): for
// an open(2), which the hook leaves to the tracepoints (the syscall number
// and one lookup), beside what those tracepoint programs cost for it; and for
// an io_uring open of a watched file, which the hook reports (the path walk,
// the prefix lookup, the header, the ring).
func BenchmarkHookKernelCost(b *testing.B) {
	requireVM(b, "BenchmarkHookKernelCostUnderQemu")
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	require.NoError(b, err)
	defer stats.Close()
	dir := filepath.Join("/tmp/bench", "a", "b", "c")
	require.NoError(b, os.MkdirAll(dir, 0o755))
	file := filepath.Join(dir, "f")
	require.NoError(b, os.WriteFile(file, nil, 0o644))
	for _, mode := range []HookMode{HookFentry, HookKprobe} {
		b.Run("mode="+string(mode), func(b *testing.B) {
			p, err := Load(Config{RingBufferSize: 8 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
				FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{"/tmp/bench"}, hookModes: []HookMode{mode}})
			require.NoError(b, err)
			defer p.Close()
			require.Equal(b, mode, p.Hooks[HookSecurityFileOpen].Mode)
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
			r, err := newUring()
			require.NoError(b, err)
			defer r.Close()
			hook := p.hooks.progs[HookSecurityFileOpen]
			perRun := func(prog *ebpf.Program, open func()) float64 {
				then := progStats(b, prog)
				for range b.N {
					open()
				}
				now := progStats(b, prog)
				return float64((now.Runtime - then.Runtime).Nanoseconds()) / float64(max(now.RunCount-then.RunCount, 1))
			}
			syscallOpen := func() {
				fd, err := unix.Open(file, unix.O_RDONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
			uringOpen := func() {
				fd, err := r.openat(file, unix.O_RDONLY)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
			b.ReportMetric(perRun(hook, syscallOpen), "hook-ns/open")
			b.ReportMetric(perRun(p.file.HandleOpenat, syscallOpen), "sys_enter-ns/open")
			b.ReportMetric(perRun(p.file.HandleOpenExit, syscallOpen), "sys_exit-ns/open")
			b.ReportMetric(perRun(hook, uringOpen), "hook-reported-ns/open")
		})
	}
}
