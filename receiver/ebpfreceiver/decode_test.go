package ebpfreceiver

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// syntheticExec builds an exec record as bpf/events.h lays it out.
func syntheticExec(tb testing.TB) []byte {
	tb.Helper()
	fn := "/usr/bin/curl\x00"
	args := "curl\x00-s\x00http://example.com/\x00"
	raw := make([]byte, 88+len(fn)+len(args))
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
	copy(raw[88:], fn)
	copy(raw[88+len(fn):], args)
	return raw
}

func TestAppendEventFromSyntheticRecord(t *testing.T) {
	r := &ebpfReceiver{procs: newProcCache(8), clock: probe.NewClock()}
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
	assert.Equal(t, int64(1000), a["process.user.id"])
	assert.Equal(t, int64(0), a["process.real_user.id"])
	assert.Equal(t, "/sbin/init", a["process.parent.executable.path"])
	info, ok := r.procs.get(4242)
	require.True(t, ok)
	assert.Equal(t, "/usr/bin/curl", info.exe)
}

// FuzzDecode: no record, however malformed, panics the decoder or the mapping.
func FuzzDecode(f *testing.F) {
	f.Add(syntheticExec(f))
	f.Add(make([]byte, 88))
	f.Fuzz(func(_ *testing.T, raw []byte) {
		var ev probe.Event
		if probe.Decode(raw, &ev) != nil {
			return
		}
		r := &ebpfReceiver{procs: newProcCache(8)}
		_, sl := newBatch()
		r.appendEvent(sl, &ev)
	})
}
