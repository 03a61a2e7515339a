package probe

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCwdLayout(t *testing.T) {
	assert.Equal(t, 256, ExecCwdMax)
	assert.Equal(t, uintptr(headerSize+24), unsafe.Offsetof(processExecEvent{}.Cwd))
}

// TestExecCwd runs a command in directories the kernel must walk up to the
// root: a nested one, one below a mount point (a tmpfs), the root itself;
// one too deep is unknown rather than wrong.
func TestExecCwd(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	nested := filepath.Join(base, "a", "bb", "ccc")
	require.NoError(t, os.MkdirAll(nested, 0o755))
	mounted := filepath.Join(base, "mnt")
	require.NoError(t, os.Mkdir(mounted, 0o755))
	require.NoError(t, unix.Mount("tmpfs", mounted, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(mounted, unix.MNT_DETACH) })
	inMount := filepath.Join(mounted, "x", "y")
	require.NoError(t, os.MkdirAll(inMount, 0o755))
	deep := base
	for i := 0; i < 30; i++ {
		deep = filepath.Join(deep, "d")
	}
	require.NoError(t, os.MkdirAll(deep, 0o755))

	p, err := Load(Config{RingBufferSize: 1 << 20, MaxArgs: 1, SkipExit: true, SkipFork: true})
	require.NoError(t, err)
	defer p.Close()
	rd, err := p.NewReader()
	require.NoError(t, err)
	defer rd.Close()

	cwdOf := func(dir string) []byte {
		cmd := exec.Command("/bin/true")
		cmd.Dir = dir
		require.NoError(t, cmd.Run())
		ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindExec && e.Tgid == uint32(cmd.Process.Pid) })
		return ev.Cwd
	}
	// The test's temp dir may itself sit below symlinks: compare with what the kernel resolves.
	real := func(p string) string {
		r, err := filepath.EvalSymlinks(p)
		require.NoError(t, err)
		return r
	}
	assert.Equal(t, real(nested), string(cwdOf(nested)))
	assert.Equal(t, real(inMount), string(cwdOf(inMount)), "across a mount point")
	assert.Equal(t, "/", string(cwdOf("/")))
	assert.Nil(t, cwdOf(deep), "deeper than the walk: unknown, not a truncated path")
	assert.True(t, strings.HasPrefix(real(nested), "/"))
}
