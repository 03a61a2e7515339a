package probe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// kernelRunsHooks says whether this kernel attaches fentry or kprobe
// programs (this machine's does neither; the qemu kernels do both).
func kernelRunsHooks(t *testing.T) bool {
	t.Helper()
	_, err := os.Stat("/sys/kernel/tracing/kprobe_events")
	return err == nil
}

// TestHooksFallBack: on a kernel that runs neither fentry nor kprobe programs
// (this one), every hook is unavailable and says why, the tracepoint objects
// load and report as before, privilege.escalation alone fails Load, and
// kill_on_escalation fails it rather than run without the kill.
func TestHooksFallBack(t *testing.T) {
	requireRoot(t)
	if kernelRunsHooks(t) {
		t.Skip("this kernel has kprobes: TestHooksUnderQemu covers the hooks")
	}
	dir := t.TempDir()
	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true,
		FileKinds: []Kind{KindFileOpen}, FilePrefixes: []string{dir}, NetKinds: []Kind{KindNetConnect, KindNetAccept},
		Escalation: true})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()
	for _, h := range []Hook{HookCommitCreds, HookSecurityFileOpen, HookTCPConnect, HookInetCskAccept} {
		st, ok := p.Hooks[h]
		require.True(t, ok, h.String())
		assert.Equal(t, HookUnavailable, st.Mode, h.String())
		assert.ErrorContains(t, st.Err, "fentry", h.String())
		// The kprobe program passed this kernel's verifier; only attaching failed (no kprobes).
		assert.ErrorContains(t, st.Err, "kprobe: attaching to", h.String())
	}
	assert.Equal(t, map[string]string{"commit_creds": "unavailable", "security_file_open": "unavailable",
		"tcp_connect": "unavailable", "inet_csk_accept": "unavailable"}, p.HookModes())
	assert.NotNil(t, p.file)
	assert.NotNil(t, p.net)
	assert.ErrorContains(t, p.Unavailable["escalation"], "commit_creds")
	delete(p.Unavailable, "escalation")
	assert.Empty(t, p.Unavailable, "only the escalation is off")

	// The file object still reports, from its tracepoints.
	path := filepath.Join(dir, "f")
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	require.NoError(t, err)
	unix.Close(fd)
	ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindFileOpen && string(e.Path) == path })
	assert.Equal(t, HookNone, ev.Hook)

	_, err = Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExec: true, SkipExit: true, SkipFork: true, Escalation: true})
	assert.ErrorContains(t, err, "privilege.escalation needs the commit_creds hook")
	_, err = Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, Escalation: true, KillOnEscalation: true})
	assert.ErrorContains(t, err, "kill_on_escalation needs the commit_creds hook")
}
