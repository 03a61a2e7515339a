package ebpfreceiver

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/podidentity"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// syntheticExec builds an exec record as bpf/events.h lays it out.
func syntheticExec(tb testing.TB) []byte {
	tb.Helper()
	fn := "/usr/bin/curl\x00"
	args := "curl\x00-s\x00http://example.com/\x00"
	const cwdOff, dataOff = 96, 352 // struct exec_event: cwd[256] after cwd_off and a pad
	cwd := "/work\x00"
	raw := make([]byte, dataOff+len(fn)+len(args))
	le := binary.LittleEndian
	le.PutUint32(raw[0:], uint32(probe.KindExec))
	le.PutUint32(raw[4:], 4242)
	le.PutUint32(raw[8:], 4242)
	le.PutUint32(raw[12:], 1)
	le.PutUint32(raw[20:], 1000)
	copy(raw[56:], "curl")
	le.PutUint32(raw[72:], uint32(len(fn)))
	le.PutUint32(raw[76:], uint32(len(args)))
	le.PutUint32(raw[80:], 3)
	le.PutUint32(raw[88:], uint32(256-len(cwd)))
	copy(raw[cwdOff+256-len(cwd):], cwd)
	copy(raw[dataOff:], fn)
	copy(raw[dataOff+len(fn):], args)
	return raw
}

func TestAppendEventFromSyntheticRecord(t *testing.T) {
	r := &ebpfReceiver{procs: newProcCache(8), clock: probe.NewClock(), strings: newInterner(8)}
	r.procs.put(1, procInfo{exe: "/sbin/init", commandLine: "/sbin/init"})
	var ev probe.Event
	require.NoError(t, probe.Decode(syntheticExec(t), &ev))
	_, sl := newBatch()
	r.appendEvent(sl, &ev)
	a := sl.LogRecords().At(0).Attributes().AsRaw()
	assert.Equal(t, "process.exec", sl.LogRecords().At(0).EventName())
	assert.Equal(t, "/usr/bin/curl", a["process.executable.path"])
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
	r.procs.put(4242, procInfo{exe: "/bin/sh", commandLine: "sh -c curl", execID: "n:b:1:4242"})
	raw := syntheticExec(t)
	binary.LittleEndian.PutUint32(raw[84:], probe.FlagDenied)
	var ev probe.Event
	require.NoError(t, probe.Decode(raw, &ev))
	_, sl := newBatch()
	r.appendEvent(sl, &ev)
	lr := sl.LogRecords().At(0)
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
	f.Add(make([]byte, 352))
	f.Add(syntheticRecord(probe.KindFileOpen, 104+16))
	f.Add(syntheticRecord(probe.KindNetTCPState, 136))
	f.Add(syntheticRecord(probe.KindMemfdCreate, 680))
	f.Fuzz(func(_ *testing.T, raw []byte) {
		var ev probe.Event
		if probe.Decode(raw, &ev) != nil {
			return
		}
		r := &ebpfReceiver{procs: newProcCache(8), strings: newInterner(8)}
		_, sl := newBatch()
		r.appendEvent(sl, &ev)
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
	file := syntheticRecord(probe.KindFileRename, 104+13)
	le := binary.LittleEndian
	le.PutUint32(file[96:], 7) // NUL included
	le.PutUint32(file[100:], 6)
	copy(file[104:], "/etc/a\x00/etc/b")
	recs := [][]byte{file, syntheticRecord(probe.KindNetConnect, 136), syntheticRecord(probe.KindPtrace, 680)}
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

// newBatch is the batch of a host process's events, for tests of the mapping.
func newBatch() (plog.Logs, plog.ScopeLogs) {
	b := newPodBatch()
	return b.logs, b.scopeFor(podidentity.Identity{})
}

func TestInternerSharesAndStaysBounded(t *testing.T) {
	in := newInterner(2)
	a := in.get([]byte("/etc/passwd"))
	b := in.get([]byte("/etc/passwd"))
	assert.Equal(t, "/etc/passwd", a)
	assert.Equal(t, unsafe.StringData(a), unsafe.StringData(b), "the second is the first's string")
	assert.Zero(t, testing.AllocsPerRun(100, func() { in.get([]byte("/etc/passwd")) }))
	in.get([]byte("/etc/shadow"))
	in.get([]byte("/etc/group")) // full: starts over
	assert.LessOrEqual(t, len(in.m), 2)
	assert.Equal(t, "/etc/shadow", in.get([]byte("/etc/shadow")))
}
