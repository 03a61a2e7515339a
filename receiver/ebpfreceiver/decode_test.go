package ebpfreceiver

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// syntheticExec builds an exec record as bpf/events.h lays it out.
func syntheticExec(tb testing.TB) []byte {
	tb.Helper()
	fn := "/bin/curl\x00" // as execve got it; the kernel resolved /usr/bin/curl
	exe := "/usr/bin/curl\x00"
	args := "curl\x00-s\x00http://example.com/\x00"
	// struct exec_event: the 80-byte header, four u32, cwd_off, exe_off, cwd[256], exe[256], exe_ino, exe_dev, a pad.
	const cwdOff, exeOff, dataOff = 104, 360, 632
	cwd := "/work\x00"
	raw := make([]byte, dataOff+len(fn)+len(args))
	le := binary.LittleEndian
	le.PutUint32(raw[0:], uint32(probe.KindExec))
	le.PutUint32(raw[4:], 4242)
	le.PutUint32(raw[8:], 4242)
	le.PutUint32(raw[12:], 1)
	le.PutUint32(raw[20:], 1000)
	copy(raw[56:], "curl")
	le.PutUint32(raw[80:], uint32(len(fn)))
	le.PutUint32(raw[84:], uint32(len(args)))
	le.PutUint32(raw[88:], 3)
	le.PutUint32(raw[96:], uint32(256-len(cwd)))
	le.PutUint32(raw[100:], uint32(256-len(exe)))
	copy(raw[cwdOff+256-len(cwd):], cwd)
	copy(raw[exeOff+256-len(exe):], exe)
	le.PutUint64(raw[616:], 777)
	copy(raw[dataOff:], fn)
	copy(raw[dataOff+len(fn):], args)
	return raw
}

func TestAppendEventFromSyntheticRecord(t *testing.T) {
	r := &ebpfReceiver{procs: newProcCache(8), clock: probe.NewClock(), strings: newInterner(8)}
	r.procs.put(1, &procInfo{exe: "/sbin/init", commandLine: "/sbin/init"})
	var ev probe.Event
	require.NoError(t, probe.Decode(syntheticExec(t), &ev))
	b := newEventBatch()
	r.appendEvent(b, &ev)
	e := events(b.logs)[0]
	a := attrMap(e)
	assert.Equal(t, "process.exec", e.EventName())
	assert.Equal(t, "/usr/bin/curl", a["process.executable.path"])
	assert.Equal(t, "/bin/curl", a["k8ssec.process.requested_path"])
	assert.Equal(t, "curl", a["process.executable.name"])
	assert.Equal(t, []any{"curl", "-s", "http://example.com/"}, a["process.command_args"])
	assert.Equal(t, "curl -s http://example.com/", a["process.command_line"])
	assert.Equal(t, "/work", a["process.working_directory"])
	assert.Equal(t, int64(1000), a["process.user.id"])
	assert.Equal(t, int64(0), a["process.real_user.id"])
	assert.Equal(t, "/sbin/init", a["process.parent.executable.path"])
	info, ok := r.procs.get(4242)
	require.True(t, ok)
	assert.Equal(t, "/usr/bin/curl", info.exe)
}

// TestDeniedExecRecord: an exec that BPF LSM refused says so, and leaves the
// process cache as it was (the caller still runs its old program).
func TestDeniedExecRecord(t *testing.T) {
	r := &ebpfReceiver{procs: newProcCache(8), clock: probe.NewClock(), strings: newInterner(8)}
	r.procs.put(4242, &procInfo{exe: "/bin/sh", commandLine: "sh -c curl", execID: "n:b:1:4242"})
	raw := syntheticExec(t)
	binary.LittleEndian.PutUint32(raw[92:], probe.FlagDenied)
	var ev probe.Event
	require.NoError(t, probe.Decode(raw, &ev))
	b := newEventBatch()
	r.appendEvent(b, &ev)
	lr := events(b.logs)[0]
	a := lr.Attributes().AsRaw()
	assert.Equal(t, "deny", a["k8ssec.enforcement.action"])
	assert.Equal(t, "/usr/bin/curl", a["k8ssec.enforcement.rule"])
	assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
	info, ok := r.procs.get(4242)
	require.True(t, ok)
	assert.Equal(t, "/bin/sh", info.exe, "the exec never happened")
}

// FuzzDecode: no record, however malformed, panics the decoder or the mapping.
func FuzzDecode(f *testing.F) {
	f.Add(syntheticExec(f))
	f.Add(make([]byte, 360))
	f.Add(syntheticRecord(probe.KindFileOpen, fileData+16))
	f.Add(syntheticResolvedOpen())
	f.Add(syntheticRecord(probe.KindNetTCPState, 144))
	f.Add(syntheticRecord(probe.KindMemfdCreate, 688))
	f.Add(syntheticUnixConnect())
	f.Add(syntheticFdDup())
	f.Add(syntheticRawSocket())
	f.Add(syntheticEscalation())
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev probe.Event
		if probe.Decode(raw, &ev) != nil {
			return
		}
		r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
		b := newEventBatch()
		r.appendEvent(b, &ev)
		if n, room := events(b.logs)[0].Attributes().Len(), ownAttributes(&ev); n > room {
			t.Errorf("a %v record has %d attributes of its own, room was made for %d", ev.Kind, n, room)
		}
	})
}

// syntheticRecord is a zeroed record of kind, size bytes, with a path for
// file records.
func syntheticRecord(kind probe.Kind, size int) []byte {
	raw := make([]byte, size)
	binary.LittleEndian.PutUint32(raw, uint32(kind))
	return raw
}

func TestDecodeNewKindsWithoutAllocating(t *testing.T) {
	file := syntheticRecord(probe.KindFileRename, fileData+13)
	le := binary.LittleEndian
	le.PutUint32(file[104:], 7) // NUL included
	le.PutUint32(file[108:], 6)
	copy(file[fileData:], "/etc/a\x00/etc/b")
	recs := [][]byte{file, syntheticRecord(probe.KindNetConnect, 144), syntheticRecord(probe.KindPtrace, 688)}
	var ev probe.Event
	for _, raw := range recs {
		require.NoError(t, probe.Decode(raw, &ev))
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = probe.Decode(raw, &ev) }), "decoding %v", ev.Kind)
	}
	require.NoError(t, probe.Decode(file, &ev))
	assert.Equal(t, "/etc/a", string(ev.Path))
	assert.Equal(t, "/etc/b", string(ev.TargetPath))
	for _, raw := range recs {
		assert.Error(t, probe.Decode(raw[:len(raw)-13], &ev), "short %v", probe.Kind(le.Uint32(raw)))
	}
}

// fileData is offsetof(struct file_event, data) (probe.TestFileLayout holds it).
const fileData = 136

// syntheticResolvedOpen is a file.open record of /etc/shadow as the kernel
// resolved it, opened as "shadow" through a watched file's hard link, with
// O_CREAT: every attribute an open can have.
func syntheticResolvedOpen() []byte {
	raw := syntheticRecord(probe.KindFileOpen, fileData+12+7)
	le := binary.LittleEndian
	le.PutUint32(raw[88:], 0o100) // O_CREAT
	le.PutUint32(raw[104:], 12)   // path_len
	le.PutUint64(raw[112:], 1234) // ino
	le.PutUint32(raw[120:], 8<<20|1)
	le.PutUint32(raw[124:], 7)   // raw_len
	le.PutUint32(raw[128:], 1|2) // resolved, inode match
	copy(raw[fileData:], "/etc/shadow\x00shadow\x00")
	return raw
}

func TestResolvedOpenAttributes(t *testing.T) {
	var ev probe.Event
	require.NoError(t, probe.Decode(syntheticResolvedOpen(), &ev))
	r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
	b := newEventBatch()
	r.appendEvent(b, &ev)
	attrs := events(b.logs)[0].Attributes().AsRaw()
	assert.Equal(t, "/etc/shadow", attrs["file.path"])
	assert.Equal(t, "shadow", attrs["k8ssec.file.requested_path"])
	assert.Equal(t, true, attrs["k8ssec.file.path_resolved"])
	assert.Equal(t, "1234", attrs["file.inode"])
	assert.Equal(t, "8:1", attrs["k8ssec.file.device"])
	assert.Equal(t, true, attrs["k8ssec.file.watched_hardlink"])
	assert.Len(t, attrs, ownAttributes(&ev), "room for exactly the attributes it has")
}

// syntheticOpen is a file.open record of /etc/passwd by pid (tgid) and tid.
func syntheticOpen(pid, tid uint32) []byte {
	raw := syntheticRecord(probe.KindFileOpen, fileData+12)
	le := binary.LittleEndian
	le.PutUint32(raw[4:], tid)
	le.PutUint32(raw[8:], pid)
	le.PutUint32(raw[12:], 1) // ppid
	le.PutUint32(raw[104:], 12)
	copy(raw[fileData:], "/etc/passwd\x00")
	return raw
}

// TestRecordsShareTheirProcessResource: consecutive events of a process are
// one resource carrying the process once; another process, or a new exec,
// starts the next, so the records keep the kernel's order.
func TestRecordsShareTheirProcessResource(t *testing.T) {
	r := &ebpfReceiver{procs: newProcCache(8), clock: probe.NewClock(), strings: newInterner(8)}
	r.procs.put(1, &procInfo{exe: "/sbin/init", commandLine: "/sbin/init"})
	r.procs.put(7, &procInfo{exe: "/usr/bin/cat", commandLine: "cat /etc/passwd", execID: "n:b:1:7"})
	curlOpen := syntheticOpen(4242, 4242)
	copy(curlOpen[:72], syntheticExec(t)[:72]) // the exec's header: same credentials and comm
	binary.LittleEndian.PutUint32(curlOpen, uint32(probe.KindFileOpen))
	b := newEventBatch()
	for _, raw := range [][]byte{syntheticOpen(7, 7), syntheticOpen(7, 8), syntheticOpen(9, 9), syntheticOpen(7, 7), syntheticExec(t), curlOpen} {
		var ev probe.Event
		require.NoError(t, probe.Decode(raw, &ev))
		r.appendEvent(b, &ev)
	}

	rls := b.logs.ResourceLogs()
	var runs []int
	for i := range rls.Len() {
		runs = append(runs, rls.At(i).ScopeLogs().At(0).LogRecords().Len())
	}
	assert.Equal(t, []int{2, 1, 1, 2}, runs, "records per resource, in the kernel's order")

	cat := rls.At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, int64(7), cat["process.pid"])
	assert.Equal(t, "/usr/bin/cat", cat["process.executable.path"])
	assert.Equal(t, "n:b:1:7", cat["k8ssec.process.exec_id"])
	assert.Equal(t, "/sbin/init", cat["process.parent.executable.path"])
	first := rls.At(0).ScopeLogs().At(0).LogRecords()
	assert.Equal(t, map[string]any{
		"file.path": "/etc/passwd", "file.name": "passwd", "file.directory": "/etc",
		"k8ssec.syscall.result": int64(0), "k8ssec.file.flags": int64(0), "k8ssec.file.intent": []any{"read"},
		"k8ssec.file.path_resolved": false,
	}, first.At(0).Attributes().AsRaw(), "a record carries its own attributes only")
	v, _ := first.At(1).Attributes().Get("thread.id")
	assert.Equal(t, int64(8), v.Int(), "another thread of the process: same resource, its thread on the record")

	unknown := rls.At(1).Resource().Attributes().AsRaw()
	assert.Equal(t, int64(9), unknown["process.pid"])
	assert.NotContains(t, unknown, "process.executable.path", "not in the cache")

	curl := rls.At(3)
	assert.Equal(t, "/usr/bin/curl", curl.Resource().Attributes().AsRaw()["process.executable.path"], "the exec starts the new program's resource")
	lrs := curl.ScopeLogs().At(0).LogRecords()
	assert.Equal(t, "process.exec", lrs.At(0).EventName())
	assert.Equal(t, "file.open", lrs.At(1).EventName(), "the new program's open joins its exec")
}

// syntheticEscalation is a privilege.escalation record as bpf/events.h lays it
// out: uid 1000 became euid 0 in syscall 16 (ioctl), and was killed.
func syntheticEscalation() []byte {
	raw := syntheticRecord(probe.KindPrivEscalation, 112)
	le := binary.LittleEndian
	le.PutUint32(raw[4:], 4242)
	le.PutUint32(raw[8:], 4242)
	for _, off := range []int{16, 20, 24, 28, 80, 88, 92} { // old uid, euid, gid, egid; new uid, gid, egid
		le.PutUint32(raw[off:], 1000)
	}
	le.PutUint32(raw[96:], 16)                             // syscall
	le.PutUint32(raw[100:], probe.EscalationKilled)        // flags
	le.PutUint32(raw[104:], uint32(probe.HookCommitCreds)) // hook
	return raw
}

func TestEscalationAttributes(t *testing.T) {
	var ev probe.Event
	require.NoError(t, probe.Decode(syntheticEscalation(), &ev))
	r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
	b := newEventBatch()
	r.appendEvent(b, &ev)
	lr := events(b.logs)[0]
	assert.Equal(t, "privilege.escalation", lr.EventName())
	assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
	assert.Equal(t, "uid 1000/1000 -> 1000/0", lr.Body().Str())
	assert.Equal(t, map[string]any{
		"k8ssec.hook":                       "commit_creds",
		"k8ssec.privilege.old.real_id":      int64(1000),
		"k8ssec.privilege.old.effective_id": int64(1000),
		"k8ssec.privilege.old.group_id":     int64(1000),
		"k8ssec.privilege.new.real_id":      int64(1000),
		"k8ssec.privilege.new.effective_id": int64(0),
		"k8ssec.privilege.new.group_id":     int64(1000),
		"k8ssec.syscall.id":                 int64(16),
		"k8ssec.enforcement.action":         "sigkill",
		"k8ssec.enforcement.rule":           "kill_on_escalation",
	}, lr.Attributes().AsRaw())
	assert.LessOrEqual(t, lr.Attributes().Len(), ownAttributes(&ev))
	assert.Error(t, probe.Decode(syntheticEscalation()[:108], &ev), "short")
}

// TestHookRecordsSaySo: a file.open or network.* record from a kernel hook
// names it; a network one has no result and fd -1 (no fd was named).
func TestHookRecordsSaySo(t *testing.T) {
	open := syntheticResolvedOpen()
	binary.LittleEndian.PutUint32(open[132:], uint32(probe.HookSecurityFileOpen))
	conn := syntheticRecord(probe.KindNetConnect, 144)
	le := binary.LittleEndian
	le.PutUint16(conn[88:], 2)    // AF_INET
	le.PutUint16(conn[90:], 6)    // TCP
	le.PutUint16(conn[94:], 8443) // dport
	le.PutUint32(conn[140:], uint32(probe.HookTCPConnect))
	r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
	for raw, hook := range map[*[]byte]string{&open: "security_file_open", &conn: "tcp_connect"} {
		var ev probe.Event
		require.NoError(t, probe.Decode(*raw, &ev))
		b := newEventBatch()
		r.appendEvent(b, &ev)
		a := events(b.logs)[0].Attributes().AsRaw()
		assert.Equal(t, hook, a["k8ssec.hook"])
		assert.LessOrEqual(t, len(a), ownAttributes(&ev))
		if ev.Kind == probe.KindNetConnect {
			assert.Equal(t, int64(-1), a["k8ssec.network.socket.fd"], "no fd, and not 0")
			assert.NotContains(t, a, "k8ssec.syscall.result")
			assert.Equal(t, int64(8443), a["server.port"])
		}
	}
}
