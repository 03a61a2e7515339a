package ebpfreceiver

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"golang.org/x/sys/unix"
)

// helperSensitive opens, and closes without reading or writing: its own
// status (not sensitive), its own environ, its parent's mem (the test
// process), and core_pattern for writing.
func helperSensitive() error {
	for _, o := range []struct {
		path  string
		flags int
	}{
		{"/proc/self/status", unix.O_RDONLY},
		{"/proc/self/environ", unix.O_RDONLY},
		{"/proc/" + strconv.Itoa(os.Getppid()) + "/mem", unix.O_RDONLY},
		{"/proc/sys/kernel/core_pattern", unix.O_WRONLY},
	} {
		fd, err := unix.Open(o.path, o.flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// TestSensitiveOpensEndToEnd: with the default file_prefixes (none covers
// /proc), the helper's opens of its environ, the test process's mem and
// core_pattern are file.open records marked with their kind (and target);
// its /proc/self/status is not reported.
func TestSensitiveOpensEndToEnd(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	cmd := helperCommand(cg, "sensitive")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper: %s", out)
	pid := cmd.Process.Pid

	got := map[string]map[string]any{}
	alerts := map[string][]string{}
	for _, e := range waitForN(t, sink, "file.open", pid, "/proc", 3) {
		m := attrMap(e)
		got[m["file.path"].(string)] = m
		alerts[m["file.path"].(string)] = runtimeRulesMatching(t, e)
	}
	environ := got[fmt.Sprintf("/proc/%d/environ", pid)]
	require.NotNil(t, environ, "%v", got)
	assert.Equal(t, "proc_environ", environ["k8ssec.file.sensitive_kind"])
	assert.Equal(t, int64(pid), environ["k8ssec.file.target_pid"])
	assert.Equal(t, "/proc/self/environ", environ["k8ssec.file.requested_path"])
	mem := got[fmt.Sprintf("/proc/%d/mem", os.Getpid())]
	require.NotNil(t, mem, "%v", got)
	assert.Equal(t, "proc_mem", mem["k8ssec.file.sensitive_kind"])
	assert.Equal(t, int64(os.Getpid()), mem["k8ssec.file.target_pid"], "the test process, another process")
	cp := got["/proc/sys/kernel/core_pattern"]
	require.NotNil(t, cp, "%v", got)
	assert.Equal(t, "core_pattern", cp["k8ssec.file.sensitive_kind"])
	assert.Equal(t, []any{"write"}, cp["k8ssec.file.intent"])
	assert.NotContains(t, cp, "k8ssec.file.target_pid")

	// The runtime rules on these records: its own environ is no alert.
	assert.Equal(t, map[string][]string{
		fmt.Sprintf("/proc/%d/environ", pid):     nil,
		fmt.Sprintf("/proc/%d/mem", os.Getpid()): {"Memory or environment of another process read"},
		"/proc/sys/kernel/core_pattern":          {"Container escape file opened for writing"},
	}, alerts)
}
