package ebpfreceiver

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"
)

func TestFileEventsEndToEnd(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	dir := filepath.Join(t.TempDir(), "watched")
	require.NoError(t, os.Mkdir(dir, 0o755))
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.CgroupPath = cg.path
		c.FilePrefixes = append(c.FilePrefixes, dir)
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	cmd := helperCommand(cg, "file", dir)
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	fd, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	pid := cmd.Process.Pid
	exe := selfExe(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")

	common := func(lr event) map[string]any {
		m := attrMap(lr)
		assert.Equal(t, int64(pid), m["process.pid"])
		assert.Equal(t, int64(os.Getpid()), m["process.parent_pid"])
		assert.Equal(t, exe, m["process.executable.path"], "from the exec record")
		assert.Equal(t, exe, m["process.parent.executable.path"])
		assert.Equal(t, int64(0), m["process.user.id"])
		assert.NotZero(t, m["k8ssec.linux.cgroup.id"])
		return m
	}

	opens := waitForN(t, sink, "file.open", pid, dir, 2)
	m := common(opens[0])
	assert.Equal(t, a, m["file.path"])
	assert.Equal(t, "a", m["file.name"])
	assert.Equal(t, dir, m["file.directory"])
	assert.Equal(t, []any{"write", "create", "truncate"}, m["k8ssec.file.intent"])
	assert.Equal(t, int64(unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC), m["k8ssec.file.flags"].(int64)&^unix.O_LARGEFILE)
	assert.Equal(t, "0644", m["file.mode"])
	assert.Equal(t, int64(fd), m["k8ssec.syscall.result"])
	assert.Equal(t, a, opens[0].Body().Str())

	m = common(opens[1])
	assert.Equal(t, filepath.Join(dir, "missing"), m["file.path"])
	assert.Equal(t, []any{"read", "write"}, m["k8ssec.file.intent"])
	assert.Equal(t, -int64(unix.ENOENT), m["k8ssec.syscall.result"])
	assert.NotContains(t, m, "file.mode")

	m = common(waitFor(t, sink, "file.rename", pid))
	assert.Equal(t, a, m["file.path"])
	assert.Equal(t, b, m["k8ssec.file.target_path"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common(waitFor(t, sink, "file.chmod", pid))
	assert.Equal(t, b, m["file.path"])
	assert.Equal(t, "0600", m["file.mode"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common(waitFor(t, sink, "file.chown", pid))
	assert.Equal(t, b, m["file.path"])
	assert.Equal(t, "65534", m["file.owner.id"])
	assert.Equal(t, "65534", m["file.group.id"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common(waitFor(t, sink, "file.unlink", pid))
	assert.Equal(t, b, m["file.path"])
	assert.Equal(t, "b", m["file.name"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])
	assert.Equal(t, int64(0), m["k8ssec.file.flags"])
}

// TestFileEventsGatedByEvents: with only file.unlink listed, the helper's
// opens, renames, chmods and chowns are not reported, and no process events.
func TestFileEventsGatedByEvents(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	dir := t.TempDir()
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.CgroupPath = cg.path
		c.Events = []string{"file.unlink"}
		c.FilePrefixes = []string{dir}
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	cmd := helperCommand(cg, "file", dir)
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	waitFor(t, sink, "file.unlink", cmd.Process.Pid)
	assert.Equal(t, 1, sink.LogRecordCount(), "one unlink, nothing else")
}

// waitForN waits for n records named event of pid, below dir when dir is
// set (the dynamic loader's opens of /etc/ld.so.cache are left out).
func waitForN(t *testing.T, sink *consumertest.LogsSink, name string, pid int, dir string, n int) []event {
	t.Helper()
	var got []event
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, lr := range find(sink, name, pid) {
			if p, _ := lr.attr("file.path"); dir == "" || strings.HasPrefix(p.Str(), dir+"/") {
				got = append(got, lr)
			}
		}
		return len(got) >= n
	}, 10*time.Second, 10*time.Millisecond, "fewer than %d %s records for pid %d", n, name, pid)
	require.Len(t, got, n, "%v", func() (raw []any) {
		for _, lr := range got {
			raw = append(raw, attrMap(lr))
		}
		return raw
	}())
	return got
}

func TestFileMappingHelpers(t *testing.T) {
	assert.Equal(t, "0644", fileMode(0o100644))
	assert.Equal(t, "4755", fileMode(0o4755))
	assert.Equal(t, "0000", fileMode(0))
	assert.Equal(t, "0007", fileMode(0o7))
	s := pcommon.NewSlice()
	putIntent(s, unix.O_RDONLY|unix.O_DIRECTORY)
	assert.Equal(t, []any{"read"}, s.AsRaw())
	s = pcommon.NewSlice()
	putIntent(s, unix.O_RDWR|unix.O_TMPFILE)
	assert.Equal(t, []any{"read", "write", "create"}, s.AsRaw())
}

// TestFileLossAccountingIsExact: a storm of opens into a one-page ring while
// the pipeline is blocked; every open is read or counted lost as file.open.
func TestFileLossAccountingIsExact(t *testing.T) {
	requireRoot(t)
	const opens = 3000
	cg := makeCgroup(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	release := make(chan struct{})
	sink, blocking := blockedSink(t, release)
	tt := newTelemetry(t)
	rcv := startReceiver(t, tt, blocking, func(c *Config) {
		c.RingBufferSize = 4096
		c.CgroupPath = cg.path
		c.Events = []string{"file.open"}
		c.FilePrefixes = []string{dir}
	})
	cmd := helperCommand(cg, "opens", target, strconv.Itoa(opens))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	close(release)
	// A marker open after the storm, repeated until one is read.
	read := func() int64 { return int64(len(find(sink, "file.open", -1))) }
	markers := 0
	for seen := false; !seen; {
		require.Less(t, markers, 100, "no marker read")
		marker := helperCommand(cg, "opens", target, "1")
		require.NoError(t, marker.Run())
		markers++
		deadline := time.Now().Add(500 * time.Millisecond)
		for !seen && time.Now().Before(deadline) {
			seen = len(find(sink, "file.open", marker.Process.Pid)) == 1
			time.Sleep(5 * time.Millisecond)
		}
	}
	require.NoError(t, rcv.Shutdown(context.Background()))
	lost := counterValue(t, tt, "otelcol_receiver_ebpf_events_lost", "file.open")
	t.Logf("file.open: read %d lost %d", read(), lost)
	assert.Positive(t, lost, "a 4 KiB ring under a blocked pipeline must overflow")
	assert.Equal(t, int64(opens+markers), read()+lost, "every open read or counted lost")
	assert.Equal(t, read(), counterValue(t, tt, "otelcol_receiver_ebpf_events_read", "file.open"))
}

// TestTrickleIsFlushedWithinTheInterval: a batch goes flushInterval after its
// first record even while more keep coming, each sooner than the interval
// (a deadline renewed per record would hold them all until the batch filled).
func TestTrickleIsFlushedWithinTheInterval(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.Events = []string{eventFileOpen}
		c.FilePrefixes = []string{dir}
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	path := filepath.Join(dir, "trickle")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	const opens, every = 30, flushInterval / 2
	firstSeen := -1
	for i := range opens {
		f, err := os.Open(path)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		if firstSeen < 0 && len(find(sink, "file.open", os.Getpid())) > 0 {
			firstSeen = i
		}
		time.Sleep(every)
	}
	require.GreaterOrEqual(t, firstSeen, 0, "no record while the trickle went on (%v apart, %d opens)", every, opens)
	// Due after about 3 opens (a poll, then the interval); 10 leaves room for a loaded machine.
	assert.LessOrEqual(t, firstSeen, 10, "the first records came after %d opens %v apart; the interval is %v", firstSeen, every, flushInterval)
}
