//go:build amd64

package probe

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestHookLayout: Decode's offsets and constants are what events.h says
// (through bpf2go's types, x86-64 only for the hook object).
func TestHookLayout(t *testing.T) {
	assert.Equal(t, escalationSize, int(unsafe.Sizeof(kprobeEscalationEvent{})))
	assert.Equal(t, uintptr(headerSize+52), unsafe.Offsetof(fileFileEvent{}.Hook))
	assert.Equal(t, uintptr(headerSize+60), unsafe.Offsetof(netNetEvent{}.Hook))
	assert.Equal(t, Hook(kprobeHookIdHOOK_COMMIT_CREDS), HookCommitCreds)
	assert.Equal(t, Hook(kprobeHookIdHOOK_SECURITY_FILE_OPEN), HookSecurityFileOpen)
	assert.Equal(t, Hook(kprobeHookIdHOOK_TCP_CONNECT), HookTCPConnect)
	assert.Equal(t, Hook(kprobeHookIdHOOK_INET_CSK_ACCEPT), HookInetCskAccept)
	assert.Equal(t, Kind(26), KindPrivEscalation, "the kind assigned to this event")
	assert.Equal(t, "privilege.escalation", KindPrivEscalation.String())
	assert.Equal(t, "security_file_open", HookSecurityFileOpen.String())
}

// TestTracedSyscalls: inside a syscall a tracepoint object reports, the
// matching hook stays quiet, and only that hook; execve's opens are the exec
// record's.
func TestTracedSyscalls(t *testing.T) {
	p := &Probe{file: &fileObjects{}, net: &netObjects{}, Missing: []string{"syscalls/sys_enter_open"}}
	got := p.tracedSyscalls(Config{FileKinds: []Kind{KindFileOpen}, NetKinds: []Kind{KindNetAccept}})
	assert.Equal(t, map[uint32]uint8{
		unix.SYS_EXECVE: 1 << HookSecurityFileOpen, unix.SYS_EXECVEAT: 1 << HookSecurityFileOpen,
		unix.SYS_OPENAT: 1 << HookSecurityFileOpen, unix.SYS_OPENAT2: 1 << HookSecurityFileOpen, unix.SYS_CREAT: 1 << HookSecurityFileOpen,
		unix.SYS_ACCEPT: 1 << HookInetCskAccept, unix.SYS_ACCEPT4: 1 << HookInetCskAccept,
	}, got, "open is missing; connect is not asked for")
	p.net = nil // the network object did not load: the hooks report accept(2) too
	got = p.tracedSyscalls(Config{NetKinds: []Kind{KindNetConnect, KindNetAccept}})
	assert.NotContains(t, got, uint32(unix.SYS_ACCEPT4))
	assert.NotContains(t, got, uint32(unix.SYS_CONNECT))
}
