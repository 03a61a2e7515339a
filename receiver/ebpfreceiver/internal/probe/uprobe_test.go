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

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// hostBash is the bash the tests type into.
const hostBash = "/bin/bash"

// startBash runs an interactive bash (no startup files) on a terminal of its own.
func startBash(t *testing.T, path string) *testenv.Terminal {
	t.Helper()
	cmd := exec.Command(path, "--norc", "--noprofile", "-i")
	cmd.Env = []string{"TERM=dumb", "PS1=$ ", "HOME=/tmp"}
	return testenv.StartTerminal(t, cmd)
}

// readShell reads until bash pid's shell record of line.
func readShell(t *testing.T, rd *Reader, pid int, line string) Event {
	t.Helper()
	ev := readUntil(t, rd, func(e *Event) bool {
		return e.Kind == KindShellCommand && e.Tgid == uint32(pid) && strings.HasPrefix(line, string(e.Command))
	})
	ev.Command = append([]byte(nil), ev.Command...)
	return ev
}

// TestShellCommands: lines typed into an interactive bash on a terminal are
// reported as its readline returns them; a line longer than the record
// keeps is cut and flagged; an empty line is not reported.
func TestShellCommands(t *testing.T) {
	requireRoot(t)
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 4, SkipExec: true, SkipExit: true, SkipFork: true,
		ShellCommands: true, ShellBinaries: []string{hostBash, "/bin/../bin/bash", "/nonexistent/bash"}})
	require.Empty(t, p.ShellErrors, "a missing bash is no error")
	require.Equal(t, []string{hostBash}, p.ShellBinaries(), "one file under two names, probed once")

	term := startBash(t, hostBash)
	line := "echo k8ssec-typed-" + t.Name() + " 'two  words'"
	long := "echo " + strings.Repeat("y", 2*ShellCommandMax)
	require.NoError(t, term.Type(""))
	require.NoError(t, term.Type(line))
	require.NoError(t, term.Type(long))

	ev := readShell(t, rd, term.Pid(), line)
	assert.Equal(t, line, string(ev.Command))
	assert.False(t, ev.CommandTruncated)
	assert.Equal(t, "bash", string(ev.CommBytes()))
	assert.NotZero(t, ev.CgroupID)

	ev = readShell(t, rd, term.Pid(), long)
	assert.Len(t, ev.Command, ShellCommandMax-1)
	assert.Equal(t, long[:ShellCommandMax-1], string(ev.Command))
	assert.True(t, ev.CommandTruncated)
	assert.Contains(t, term.Output(), "k8ssec-typed-", "bash ran the command")
}

// TestShellCommandsOfAnotherBash: a bash copied elsewhere (as a container
// image carries its own) is another inode: probed when AttachShellOf finds
// it through the process, once, whatever path names it next.
func TestShellCommandsOfAnotherBash(t *testing.T) {
	requireRoot(t)
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 4, SkipExec: true, SkipExit: true, SkipFork: true,
		ShellCommands: true, ShellBinaries: []string{hostBash}})
	copied := filepath.Join(t.TempDir(), "bash")
	copyExecutable(t, hostBash, copied)
	hardlink := copied + "-link"
	require.NoError(t, os.Link(copied, hardlink))

	term := startBash(t, copied)
	ok, err := p.AttachShellOf(uint32(term.Pid()), copied)
	require.NoError(t, err)
	assert.True(t, ok, "a new bash binary")
	ok, err = p.AttachShell(hardlink)
	require.NoError(t, err)
	assert.False(t, ok, "the same inode under another name is probed already")
	ok, err = p.AttachShell(hostBash)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Len(t, p.ShellBinaries(), 2)

	// A readline already waiting when the uretprobe was attached returns
	// unseen (its return address was not hooked at its entry): the line
	// typed at that prompt may be missed, the next one is not.
	line := "echo k8ssec-copied-bash"
	require.NoError(t, term.Type(line))
	require.NoError(t, term.Type(line))
	ev := readShell(t, rd, term.Pid(), line)
	assert.Equal(t, line, string(ev.Command))

	// A binary without readline is refused with its name, and not tried again.
	notBash := filepath.Join(t.TempDir(), "bash")
	copyExecutable(t, "/bin/true", notBash)
	_, err = p.AttachShell(notBash)
	assert.ErrorContains(t, err, notBash)
	ok, err = p.AttachShell(notBash)
	assert.NoError(t, err)
	assert.False(t, ok)
}

// TestShellBinariesAreBounded: past the limit, another bash is refused
// with ErrShellLimit, and the ones probed stay probed.
func TestShellBinariesAreBounded(t *testing.T) {
	requireRoot(t)
	p, _ := loadReading(t, Config{RingBufferSize: 4096, MaxArgs: 4, SkipExec: true, SkipExit: true, SkipFork: true,
		ShellCommands: true, ShellBinaries: []string{hostBash}, shellLimit: 1})
	copied := filepath.Join(t.TempDir(), "bash")
	copyExecutable(t, hostBash, copied)
	ok, err := p.AttachShell(copied)
	assert.ErrorIs(t, err, ErrShellLimit)
	assert.False(t, ok)
	assert.Equal(t, []string{hostBash}, p.ShellBinaries())
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// buildTarget compiles testdata/uprobe_target.c with the machine's C
// compiler: a real native function, called with the System V ABI the uprobe
// programs read. -O0: every call is a real call to the named symbol.
func buildTarget(tb testing.TB) string {
	tb.Helper()
	var cc string
	for _, c := range []string{"cc", "clang", "gcc"} {
		if p, err := exec.LookPath(c); err == nil {
			cc = p
			break
		}
	}
	testenv.Require(tb, cc != "", "a C compiler (cc, clang or gcc: hack/install-deps.sh test installs clang) builds the uprobe target")
	out := filepath.Join(tb.TempDir(), "uprobe_target")
	b, err := exec.Command(cc, "-O0", "-o", out, "testdata/uprobe_target.c").CombinedOutput()
	require.NoError(tb, err, "%s", b)
	return out
}

// TestUprobeArguments: a uprobe on a C function reports its int and string
// arguments (a long string cut and flagged), and a uretprobe its returned
// string; a negative int is the register's 64 bits.
func TestUprobeArguments(t *testing.T) {
	requireRoot(t)
	target := buildTarget(t)
	p, rd := loadReading(t, Config{RingBufferSize: 1 << 20, MaxArgs: 4, SkipExec: true, SkipExit: true, SkipFork: true,
		Uprobes: []Uprobe{
			{Binary: target, Symbol: "k8ssec_probe_me", Args: []UprobeArg{UprobeArgInt, UprobeArgString, UprobeArgInt, UprobeArgString}},
			{Binary: target, Symbol: "k8ssec_name", Return: true, Args: []UprobeArg{UprobeArgString}},
		}})
	require.Len(t, p.Uprobes(), 2)

	cmd := exec.Command(target, "1", "two")
	require.NoError(t, cmd.Run())
	pid := uint32(cmd.Process.Pid)

	ev := readUntil(t, rd, func(e *Event) bool { return e.Kind == KindUprobe && e.Tgid == pid && e.UprobeIndex == 0 })
	assert.Equal(t, uint64(42), ev.UprobeArgs[0])
	assert.Equal(t, int64(-7), int64(ev.UprobeArgs[2]))
	assert.Equal(t, "hello uprobe", string(ev.UprobeStrs[1]))
	assert.False(t, ev.UprobeStrTruncated(1))
	assert.Equal(t, strings.Repeat("x", UprobeStrMax-1), string(ev.UprobeStrs[3]))
	assert.True(t, ev.UprobeStrTruncated(3))
	assert.False(t, ev.UprobeStrFault(1) || ev.UprobeStrFault(3))
	assert.Empty(t, ev.UprobeStrs[0], "an int argument has no string")
	assert.Equal(t, "uprobe_target", string(ev.CommBytes()))

	ev = readUntil(t, rd, func(e *Event) bool { return e.Kind == KindUprobe && e.Tgid == pid && e.UprobeIndex == 1 })
	assert.Equal(t, "name-3", string(ev.UprobeStrs[0]), "argc is 3")
}

// TestUprobeErrors: what cannot be probed fails Load, naming the binary.
func TestUprobeErrors(t *testing.T) {
	requireRoot(t)
	target := buildTarget(t)
	base := Config{RingBufferSize: 4096, MaxArgs: 4, SkipExec: true, SkipExit: true, SkipFork: true}

	cfg := base
	cfg.Uprobes = []Uprobe{{Binary: target, Symbol: "k8ssec_no_such_function"}}
	_, err := Load(cfg)
	assert.ErrorContains(t, err, target)
	assert.ErrorContains(t, err, "k8ssec_no_such_function")

	cfg.Uprobes = []Uprobe{{Binary: "/nonexistent/k8ssec", Symbol: "main"}}
	_, err = Load(cfg)
	assert.ErrorContains(t, err, "/nonexistent/k8ssec")
}

func TestCheckUprobes(t *testing.T) {
	ok := Uprobe{Binary: "/bin/true", Symbol: "main", Args: []UprobeArg{UprobeArgInt}}
	assert.NoError(t, checkUprobes([]Uprobe{ok}))
	for _, c := range []struct {
		u    Uprobe
		want string
	}{
		{Uprobe{Binary: "true", Symbol: "main"}, "absolute"},
		{Uprobe{Binary: "/bin/true"}, "symbol is empty"},
		{Uprobe{Binary: "/bin/true", Symbol: "main", Args: make([]UprobeArg, 5)}, "at most 4"},
		{Uprobe{Binary: "/bin/true", Symbol: "main", Args: []UprobeArg{9}}, "unknown type"},
		{Uprobe{Binary: "/bin/true", Symbol: "main", Return: true, Args: []UprobeArg{UprobeArgInt, UprobeArgInt}}, "return value"},
	} {
		assert.ErrorContains(t, checkUprobes([]Uprobe{c.u}), c.want, "%+v", c.u)
	}
	assert.ErrorContains(t, checkUprobes(make([]Uprobe, MaxUprobes+1)), "at most 64")
}

// TestResolveBinary: library names are found as the dynamic loader finds
// them; what is not found says where it was looked for.
func TestResolveBinary(t *testing.T) {
	libc, err := ResolveBinary("libc.so.6")
	require.NoError(t, err)
	assert.True(t, filepath.IsAbs(libc))
	_, err = os.Stat(libc)
	require.NoError(t, err)
	short, err := ResolveBinary("libc")
	require.NoError(t, err)
	assert.Equal(t, filepath.Base(libc), filepath.Base(short))

	p, err := ResolveBinary("/bin/true")
	require.NoError(t, err)
	assert.Equal(t, "/bin/true", p)
	_, err = ResolveBinary("libk8ssec-none")
	assert.ErrorContains(t, err, "/etc/ld.so.cache")
	_, err = ResolveBinary("bin/true")
	assert.ErrorContains(t, err, "absolute")
	_, err = ResolveBinary("/etc")
	assert.ErrorContains(t, err, "regular file")
}

// TestLdCacheParse: the cache's own entries resolve to their paths through
// the parser alone (no directory search).
func TestLdCacheParse(t *testing.T) {
	data, err := os.ReadFile(ldCachePath)
	testenv.Require(t, err == nil, "/etc/ld.so.cache (ldconfig writes it)")
	p := lookupLdCache(data, "libc.so.6", cacheArchFlag())
	require.NotEmpty(t, p)
	assert.Equal(t, "libc.so.6", filepath.Base(p))
	assert.Empty(t, lookupLdCache(data, "libk8ssec-none", cacheArchFlag()))
	assert.Empty(t, lookupLdCache(data[:30], "libc.so.6", cacheArchFlag()), "a cut cache is no cache")
}

// TestUprobeLayout: the Go constants are the C ones, and a shell record
// whose length runs past its end is refused.
func TestUprobeLayout(t *testing.T) {
	assert.Equal(t, headerSize+8, shellCmdOff)
	assert.Equal(t, ShellCommandMax, int(unsafe.Sizeof(uprobeShellEvent{}.Command)))
	assert.Equal(t, headerSize+8+8*MaxUprobeArgs+MaxUprobeArgs*UprobeStrMax, uprobeSize)
	assert.Equal(t, UprobeStrMax, int(unsafe.Sizeof(uprobeUprobeEvent{}.Strs[0])))
	assert.Equal(t, MaxUprobeArgs, len(uprobeUprobeConfig{}.Types))

	raw := make([]byte, shellCmdOff+4)
	le.PutUint32(raw, uint32(KindShellCommand))
	le.PutUint32(raw[headerSize:], 5)
	var ev Event
	assert.ErrorIs(t, Decode(raw, &ev), errBadLength)
	le.PutUint32(raw[headerSize:], 4)
	copy(raw[shellCmdOff:], "ls\x00\x00")
	require.NoError(t, Decode(raw, &ev))
	assert.Equal(t, "ls", string(ev.Command))
	le.PutUint32(raw, uint32(KindUprobe))
	assert.ErrorIs(t, Decode(raw, &ev), errShort)
}
