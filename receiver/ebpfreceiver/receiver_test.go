package ebpfreceiver

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadatatest"
)

func selfPid() int { return os.Getpid() }

// realPath is path with every symlink resolved: what the kernel reports as an
// executable's path.
func realPath(t testing.TB, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	require.NoError(t, err)
	return p
}

func selfExe(t testing.TB) string {
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	return exe
}

func requireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "the ebpf receiver loads BPF programs: it")
	// The syscalls tracepoints (file events) attach through tracefs: mount it
	// on a fresh machine so that the tests exercise them.
	var st unix.Statfs_t
	if unix.Statfs("/sys/kernel/tracing", &st) != nil || st.Type != unix.TRACEFS_MAGIC {
		if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
			t.Logf("mounting tracefs: %v", err)
		}
	}
}

func startReceiver(t testing.TB, tt *componenttest.Telemetry, next consumer.Logs, edit func(*Config)) receiver.Logs {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.RingBufferSize = 4 << 20
	if edit != nil {
		edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	rcv, err := f.CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	return rcv
}

func newTelemetry(t testing.TB) *componenttest.Telemetry {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	return tt
}

// event is a record as rules see it: its own attributes over its
// resource's (the process, its container and pod).
type event struct {
	plog.LogRecord
	Resource pcommon.Resource
}

// attr is the event's attribute name: the record's, else its resource's.
func (e event) attr(name string) (pcommon.Value, bool) {
	if v, ok := e.Attributes().Get(name); ok {
		return v, true
	}
	return e.Resource.Attributes().Get(name)
}

// events lists the records of ld with their resources.
func events(ld plog.Logs) []event {
	var out []event
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				out = append(out, event{lrs.At(k), rls.At(i).Resource()})
			}
		}
	}
	return out
}

// find returns the records named event for pid seen by sink so far.
func find(sink *consumertest.LogsSink, name string, pid int) []event {
	var out []event
	for _, ld := range sink.AllLogs() {
		for _, e := range events(ld) {
			if e.EventName() != name {
				continue
			}
			if v, ok := e.attr(attrPid); ok && (pid < 0 || v.Int() == int64(pid)) {
				out = append(out, e)
			}
		}
	}
	return out
}

func waitFor(t *testing.T, sink *consumertest.LogsSink, name string, pid int) event {
	t.Helper()
	var got []event
	require.Eventually(t, func() bool {
		got = find(sink, name, pid)
		return len(got) > 0
	}, 10*time.Second, 10*time.Millisecond, "no %s record for pid %d", name, pid)
	require.Len(t, got, 1)
	return got[0]
}

// attrMap is every attribute of e, the record's over its resource's.
func attrMap(e event) map[string]any {
	m := e.Resource.Attributes().AsRaw()
	maps.Copy(m, e.Attributes().AsRaw())
	return m
}

func TestExecAndExitEndToEnd(t *testing.T) {
	requireRoot(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, nil)
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	before := time.Now()
	trueCmd := exec.Command("/bin/true", "--k8ssec", "two words", "")
	require.NoError(t, trueCmd.Run())
	shCmd := exec.Command("/bin/sh", "-c", "exit 3")
	err := shCmd.Run()
	require.Error(t, err)
	require.Equal(t, 3, shCmd.ProcessState.ExitCode())

	me := selfExe(t)
	uid := int64(os.Geteuid())
	gid := int64(os.Getegid())

	lr := waitFor(t, sink, "process.exec", trueCmd.Process.Pid)
	a := attrMap(lr)
	assert.Equal(t, int64(trueCmd.Process.Pid), a["process.pid"])
	assert.Equal(t, int64(os.Getpid()), a["process.parent_pid"])
	// The executable as the kernel resolved it (on a merged-/usr system /bin/true is /usr/bin/true).
	assert.Equal(t, realPath(t, "/bin/true"), a["process.executable.path"])
	assert.Equal(t, "true", a["process.executable.name"])
	if realPath(t, "/bin/true") != "/bin/true" {
		assert.Equal(t, "/bin/true", a["k8ssec.process.requested_path"])
	}
	assert.Equal(t, []any{"/bin/true", "--k8ssec", "two words", ""}, a["process.command_args"])
	assert.Equal(t, "/bin/true --k8ssec two words ", a["process.command_line"])
	assert.Equal(t, uid, a["process.user.id"])
	assert.Equal(t, int64(os.Getuid()), a["process.real_user.id"])
	assert.Equal(t, gid, a["process.group.id"])
	assert.Equal(t, me, a["process.parent.executable.path"], "the test binary, seeded from /proc")
	assert.Equal(t, "true", a["k8ssec.process.comm"])
	assert.NotZero(t, a["k8ssec.linux.cgroup.id"])
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
	assert.WithinDuration(t, before, lr.Timestamp().AsTime(), 2*time.Second)
	assert.Equal(t, "/bin/true --k8ssec two words ", lr.Body().Str())

	lr = waitFor(t, sink, "process.exit", trueCmd.Process.Pid)
	a = attrMap(lr)
	assert.Equal(t, int64(0), a["process.exit.code"])
	assert.Equal(t, realPath(t, "/bin/true"), a["process.executable.path"], "from the process cache")
	assert.Equal(t, me, a["process.parent.executable.path"])

	lr = waitFor(t, sink, "process.exec", shCmd.Process.Pid)
	assert.Equal(t, []any{"/bin/sh", "-c", "exit 3"}, attrMap(lr)["process.command_args"])
	lr = waitFor(t, sink, "process.exit", shCmd.Process.Pid)
	a = attrMap(lr)
	assert.Equal(t, int64(3), a["process.exit.code"])
	assert.Equal(t, realPath(t, "/bin/sh"), a["process.executable.path"])
	assert.Equal(t, filepath.Base(realPath(t, "/bin/sh")), a["process.executable.name"])
	assert.Equal(t, "/bin/sh -c exit 3", a["process.command_line"])
	assert.NotContains(t, a, "k8ssec.process.exit.signal")
}

func TestIgnoreComms(t *testing.T) {
	requireRoot(t)
	ignored := filepath.Join(t.TempDir(), "k8ssec-ignore")
	copyFile(t, "/bin/sleep", ignored)

	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.IgnoreComms = []string{"k8ssec-ignore"} })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	ign := exec.Command(ignored, "0")
	require.NoError(t, ign.Run())
	// A marker after it: once its exit is read, anything of the ignored one would have been too.
	marker := exec.Command("/bin/true", "marker")
	require.NoError(t, marker.Run())
	waitFor(t, sink, "process.exec", marker.Process.Pid)
	waitFor(t, sink, "process.exit", marker.Process.Pid)

	assert.Empty(t, find(sink, "process.exec", ign.Process.Pid), "ignored comm's exec")
	assert.Empty(t, find(sink, "process.exit", ign.Process.Pid), "ignored comm's exit")
}

// TestLossAccountingIsExact fills a one-page ring buffer while the pipeline is
// blocked: every exec and exit of the storm's processes is either read or
// counted lost, and the counts add up exactly. A cgroup filter keeps the rest
// of the machine out of the counts.
func TestLossAccountingIsExact(t *testing.T) {
	requireRoot(t)
	const children = 2000
	cg := makeCgroup(t)
	storm := filepath.Join(t.TempDir(), "k8ssec-storm")
	copyFile(t, "/bin/true", storm)

	release := make(chan struct{})
	sink, blocking := blockedSink(t, release)
	tt := newTelemetry(t)
	rcv := startReceiver(t, tt, blocking, func(c *Config) {
		c.RingBufferSize = 4096
		c.CgroupPath = cg.path
	})
	shutdown := func() { require.NoError(t, rcv.Shutdown(context.Background())) }

	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done`, children, storm)
	sh := cg.command("/bin/sh", "-c", script)
	start := time.Now()
	require.NoError(t, sh.Run())
	t.Logf("storm: %d execs in %v", children, time.Since(start))
	close(release)

	// The ring drains now. A marker run after the storm is read last; it may
	// itself be lost while the reader is still catching up, so run markers
	// until one's exit is read (each counts in the totals).
	markers := 0
	for seen := false; !seen; {
		require.Less(t, markers, 100, "no marker exit read")
		marker := cg.command("/bin/true", "marker")
		require.NoError(t, marker.Run())
		markers++
		deadline := time.Now().Add(500 * time.Millisecond)
		for !seen && time.Now().Before(deadline) {
			seen = len(find(sink, "process.exit", marker.Process.Pid)) == 1
			time.Sleep(5 * time.Millisecond)
		}
	}
	shutdown()

	want := int64(children + 1 + markers) // the storm's children, the shell, the markers
	readExec := int64(len(find(sink, "process.exec", -1)))
	readExit := int64(len(find(sink, "process.exit", -1)))
	lostExec := counterValue(t, tt, "otelcol_receiver_ebpf_events_lost", "process.exec")
	lostExit := counterValue(t, tt, "otelcol_receiver_ebpf_events_lost", "process.exit")
	t.Logf("exec: read %d lost %d; exit: read %d lost %d", readExec, lostExec, readExit, lostExit)
	assert.Positive(t, lostExec+lostExit, "a 4 KiB ring under a blocked pipeline must overflow")
	assert.Equal(t, want, readExec+lostExec, "every exec read or counted lost")
	assert.Equal(t, want, readExit+lostExit, "every exit read or counted lost")
	assert.Equal(t, readExec, counterValue(t, tt, "otelcol_receiver_ebpf_events_read", "process.exec"))
	assert.Equal(t, readExit, counterValue(t, tt, "otelcol_receiver_ebpf_events_read", "process.exit"))
	for _, lr := range find(sink, "process.exec", -1) {
		if attrMap(lr)["process.executable.path"] == storm {
			continue
		}
		assert.Contains(t, []any{realPath(t, "/bin/sh"), realPath(t, "/bin/true")}, attrMap(lr)["process.executable.path"])
	}
}

func counterValue(t *testing.T, tt *componenttest.Telemetry, name, event string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0 // never recorded
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is an int sum", name)
	var total int64
	for _, dp := range sum.DataPoints {
		if v, ok := dp.Attributes.Value("event.name"); ok && v.AsString() == event {
			total += dp.Value
		}
	}
	return total
}

type testCgroup struct {
	path string
	fd   *os.File
}

// makeCgroup creates a cgroup v2 directory for the test's processes.
func makeCgroup(t *testing.T) *testCgroup {
	t.Helper()
	root := "/sys/fs/cgroup"
	if _, err := os.Stat(root + "/unified/cgroup.procs"); err == nil {
		root += "/unified" // hybrid hierarchy: v2 lives below unified/
	}
	if _, err := os.Stat(root + "/cgroup.procs"); err != nil {
		t.Fatalf("no cgroup v2 hierarchy at %s: mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`", root)
	}
	dir := filepath.Join(root, "k8ssec-test-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	require.NoError(t, os.Mkdir(dir, 0o755))
	fd, err := os.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() {
		fd.Close()
		require.Eventually(t, func() bool { return os.Remove(dir) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	return &testCgroup{path: dir, fd: fd}
}

// command starts its process directly in the cgroup (clone3 CLONE_INTO_CGROUP).
func (c *testCgroup) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(c.fd.Fd())}
	return cmd
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
}

// blockedSink is a consumer that holds every batch until release is closed,
// then hands it to the returned sink: a pipeline that stops reading.
func blockedSink(t *testing.T, release <-chan struct{}) (*consumertest.LogsSink, consumer.Logs) {
	t.Helper()
	sink := new(consumertest.LogsSink)
	blocking, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		<-release
		return sink.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	return sink, blocking
}
