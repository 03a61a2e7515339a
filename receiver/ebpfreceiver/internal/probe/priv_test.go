package probe

import (
	"os"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestPrivLayout(t *testing.T) {
	assert.Equal(t, 80+8+8+48+32+2*256, privSize)
	assert.Equal(t, uintptr(96), unsafe.Offsetof(privPrivEvent{}.Args))
	assert.Equal(t, uintptr(144), unsafe.Offsetof(privPrivEvent{}.Name))
	assert.Equal(t, "setuid", OpSetuid.String())
	assert.Equal(t, "memfd_create", OpMemfdCreate.String())
	assert.Equal(t, "finit_module", OpFinitModule.String())
	assert.Equal(t, "op(99)", Op(99).String())
}

func TestPrivEvents(t *testing.T) {
	requireRoot(t)
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true,
		PrivKinds: []Kind{KindPrivSetuid, KindPrivSetgid, KindPrivCapset, KindNsSetns, KindNsUnshare, KindNsMount,
			KindModuleLoad, KindPtrace, KindBPFLoad, KindMemfdCreate}})
	require.NoError(t, err)
	defer p.Close()
	require.Empty(t, p.Unavailable)
	t.Logf("tracepoints missing on this kernel: %v", p.Missing)
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := uint32(os.Getpid())
	of := func(k Kind) func(*Event) bool { return func(e *Event) bool { return e.Kind == k && e.Tgid == self } }

	fd, err := unix.MemfdCreate("k8ssec-probe", unix.MFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(fd)
	ev := readUntil(t, rd, of(KindMemfdCreate))
	assert.Equal(t, "k8ssec-probe", string(ev.Str1))
	assert.Equal(t, int64(fd), ev.Result)
	assert.Equal(t, uint64(unix.MFD_CLOEXEC), ev.SysArgs[1])
	assert.Equal(t, OpMemfdCreate, ev.Op)

	ns, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ns)
	require.NoError(t, unix.Setns(ns, unix.CLONE_NEWUTS))
	ev = readUntil(t, rd, of(KindNsSetns))
	assert.Equal(t, uint64(ns), ev.SysArgs[0])
	assert.Equal(t, uint64(unix.CLONE_NEWUTS), ev.SysArgs[1])
	assert.Zero(t, ev.Result)
	assert.Equal(t, uint32(unix.Gettid()), ev.Pid)
}
