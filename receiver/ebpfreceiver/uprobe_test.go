package ebpfreceiver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadatatest"
)

func TestUprobeConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	assert.True(t, cfg.ShellCommands, "on by default")
	assert.Empty(t, cfg.Uprobes)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"shell_commands": false,
		"uprobes": []any{
			map[string]any{"binary": "libc.so.6", "symbol": "getenv", "args": []any{"string"}},
			map[string]any{"binary": "/usr/bin/app", "symbol": "check", "return": true, "args": []any{"int"}},
		},
	}).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.False(t, cfg.ShellCommands)
	require.Len(t, cfg.Uprobes, 2)
	assert.Equal(t, "getenv", cfg.Uprobes[0].Symbol)
	assert.True(t, cfg.Uprobes[1].Return)
	assert.Equal(t, []string{"int"}, cfg.Uprobes[1].Args)

	for _, c := range []struct {
		u    UprobeConfig
		want string
	}{
		{UprobeConfig{Symbol: "f"}, `uprobes[0] (binary "", symbol "f"): binary is empty`},
		{UprobeConfig{Binary: "bin/app", Symbol: "f"}, "must be an absolute path"},
		{UprobeConfig{Binary: "/bin/app"}, "symbol is empty"},
		{UprobeConfig{Binary: "/bin/app", Symbol: "f", Args: []string{"int", "int", "int", "int", "int"}}, "5 args, at most 4"},
		{UprobeConfig{Binary: "/bin/app", Symbol: "f", Args: []string{"float"}}, `args[0] "float": the type must be int or string`},
		{UprobeConfig{Binary: "/bin/app", Symbol: "f", Return: true, Args: []string{"int", "string"}}, "return value"},
	} {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.Uprobes = []UprobeConfig{c.u}
		assert.ErrorContains(t, cfg.Validate(), c.want)
	}
	cfg = NewFactory().CreateDefaultConfig().(*Config)
	cfg.Uprobes = make([]UprobeConfig, 65)
	for i := range cfg.Uprobes {
		cfg.Uprobes[i] = UprobeConfig{Binary: "/bin/app", Symbol: "f"}
	}
	assert.ErrorContains(t, cfg.Validate(), "at most 64")
}

// typeUntilSeen types line into the terminal until the receiver reports it
// as bash's shell command: a bash whose binary the receiver probes only
// once its exec is read may have read the first lines unseen.
func typeUntilSeen(t *testing.T, sink *consumertest.LogsSink, term *testenv.Terminal, line string) event {
	t.Helper()
	var got []event
	require.Eventually(t, func() bool {
		got = find(sink, eventShellCommand, term.Pid())
		if len(got) == 0 {
			require.NoError(t, term.Type(line))
		}
		return len(got) > 0
	}, 10*time.Second, 200*time.Millisecond, "no shell command from bash %d; its output: %s", term.Pid(), term.Output())
	return got[0]
}

// TestShellCommandsEndToEnd: commands typed into an interactive bash on a
// terminal, in the test's cgroup, are process.shell_command records with
// the shell as the process; a copy of bash elsewhere (a container's own
// bash: another inode) is probed when it is exec'd.
func TestShellCommandsEndToEnd(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.CgroupPath = cg.path
		c.Events = []string{eventProcessExec}
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	// The host's bash; a copy (another inode, as a container's own bash);
	// another copy run through a symlink named sh (the kernel resolves it).
	copied := filepath.Join(t.TempDir(), "bash")
	copyFile(t, "/bin/bash", copied)
	viaLink := filepath.Join(t.TempDir(), "bash")
	copyFile(t, "/bin/bash", viaLink)
	sh := filepath.Join(filepath.Dir(viaLink), "sh")
	require.NoError(t, os.Symlink(viaLink, sh))
	for _, bash := range []string{"/bin/bash", copied, sh} {
		cmd := cg.command(bash, "--norc", "--noprofile", "-i")
		cmd.Env = []string{"TERM=dumb", "PS1=$ ", "HOME=/tmp"}
		term := testenv.StartTerminal(t, cmd)
		line := "echo k8ssec-e2e 'typed by a test' # " + bash
		e := typeUntilSeen(t, sink, term, line)
		a := attrMap(e)
		assert.Equal(t, line, a[attrShellCommand])
		assert.Equal(t, line, e.Body().Str())
		resolved, err := filepath.EvalSymlinks(bash)
		require.NoError(t, err)
		assert.Equal(t, resolved, a[attrExecutablePath], "the shell is the process, its executable as the kernel resolved it")
		assert.Equal(t, filepath.Base(bash), a[attrComm], "the name it was run by")
		assert.NotContains(t, a, attrShellCommandTruncated)

		long := "echo " + strings.Repeat("z", 1500)
		require.NoError(t, term.Type(long))
		require.Eventually(t, func() bool {
			for _, e := range find(sink, eventShellCommand, term.Pid()) {
				if a := attrMap(e); a[attrShellCommandTruncated] == true {
					assert.Equal(t, long[:1023], a[attrShellCommand])
					return true
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond, "no truncated shell command")
	}
	// Nothing from outside the cgroup: a bash of the test's own, on a terminal.
	outside := exec.Command("/bin/bash", "--norc", "--noprofile", "-i")
	outside.Env = []string{"TERM=dumb", "HOME=/tmp"}
	term := testenv.StartTerminal(t, outside)
	require.NoError(t, term.Type("echo k8ssec-outside"))
	require.Eventually(t, func() bool { return strings.Contains(term.Output(), "k8ssec-outside\r\n") }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // a record would be read by now: the reader polls every 25 ms, batches flush at 100
	assert.Empty(t, find(sink, eventShellCommand, term.Pid()))
}

// TestUprobeEndToEnd: a configured uprobe on a C function and a uretprobe
// on another give process.uprobe records naming the probe and the values.
func TestUprobeEndToEnd(t *testing.T) {
	requireRoot(t)
	var cc string
	for _, c := range []string{"cc", "clang", "gcc"} {
		if p, err := exec.LookPath(c); err == nil {
			cc = p
			break
		}
	}
	testenv.Require(t, cc != "", "a C compiler (hack/install-deps.sh test installs clang) builds the uprobe target")
	target := filepath.Join(t.TempDir(), "uprobe_target")
	out, err := exec.Command(cc, "-O0", "-o", target, "internal/probe/testdata/uprobe_target.c").CombinedOutput()
	require.NoError(t, err, "%s", out)

	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) {
		c.CgroupPath = cg.path
		c.Events = []string{eventProcessExec}
		c.ShellCommands = false
		c.Uprobes = []UprobeConfig{
			{Binary: target, Symbol: "k8ssec_probe_me", Args: []string{"int", "string", "int", "string"}},
			{Binary: target, Symbol: "k8ssec_name", Return: true, Args: []string{"string"}},
		}
	})
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	// Outside the cgroup first: its records, if any, would be read before the others.
	outside := exec.Command(target, "2")
	require.NoError(t, outside.Run())
	cmd := cg.command(target, "2")
	require.NoError(t, cmd.Run())
	var got []event
	require.Eventually(t, func() bool {
		got = find(sink, eventUprobe, cmd.Process.Pid)
		return len(got) == 4
	}, 10*time.Second, 10*time.Millisecond, "two calls of each probed function")
	resolvedTarget, err := filepath.EvalSymlinks(target)
	require.NoError(t, err)
	var entry, ret int
	for _, e := range got {
		a := attrMap(e)
		assert.Equal(t, target, a[attrUprobeBinary])
		assert.Equal(t, resolvedTarget, a[attrExecutablePath])
		switch a[attrUprobeSymbol] {
		case "k8ssec_probe_me":
			entry++
			assert.Equal(t, false, a[attrUprobeReturn])
			assert.Equal(t, []any{int64(42), "hello uprobe", int64(-7), strings.Repeat("x", 127)}, a[attrUprobeArgs])
			assert.Equal(t, true, a[attrUprobeArgsTruncated])
			assert.NotContains(t, a, attrUprobeArgsUnreadable)
			assert.Equal(t, `k8ssec_probe_me(42, "hello uprobe", -7, "`+strings.Repeat("x", 127)+`")`, e.Body().Str())
		case "k8ssec_name":
			ret++
			assert.Equal(t, true, a[attrUprobeReturn])
			assert.Equal(t, []any{"name-2"}, a[attrUprobeArgs])
			assert.Equal(t, `k8ssec_name() = "name-2"`, e.Body().Str())
		}
	}
	assert.Equal(t, 2, entry)
	assert.Equal(t, 2, ret)
	assert.Empty(t, find(sink, eventUprobe, outside.Process.Pid), "the cgroup filter applies to uprobes")
}

// TestUprobeStartErrors: a missing symbol or library stops the receiver at
// start, naming the binary.
func TestUprobeStartErrors(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		u    UprobeConfig
		want []string
	}{
		{UprobeConfig{Binary: "/bin/true", Symbol: "k8ssec_no_such_function"}, []string{"/bin/true", "k8ssec_no_such_function"}},
		{UprobeConfig{Binary: "libk8ssec-none", Symbol: "f"}, []string{`uprobes[0]`, `library "libk8ssec-none"`}},
	} {
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Events = []string{eventProcessExec}
		cfg.RingBufferSize = 1 << 16
		cfg.Uprobes = []UprobeConfig{c.u}
		require.NoError(t, cfg.Validate())
		rcv, err := f.CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), cfg, new(consumertest.LogsSink))
		require.NoError(t, err)
		err = rcv.Start(context.Background(), componenttest.NewNopHost())
		for _, w := range c.want {
			assert.ErrorContains(t, err, w)
		}
		require.NoError(t, rcv.Shutdown(context.Background()))
	}
}
