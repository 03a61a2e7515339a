package ebpfreceiver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

func TestPrivilegeEventsEndToEnd(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	mnt := t.TempDir()
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	cmd := helperCommand(cg, "priv", mnt)
	out, err := cmd.Output()
	require.NoError(t, err, "helper: %s", out)
	var bpfFd, memfd, nsFd, traced int
	var capEff uint32
	_, err = fmt.Sscan(string(out), &bpfFd, &memfd, &nsFd, &traced, &capEff)
	require.NoError(t, err, "%s", out)
	pid := cmd.Process.Pid
	exe := selfExe(t)

	common := func(event string) map[string]any {
		m := attrMap(waitFor(t, sink, event, pid))
		assert.Equal(t, exe, m["process.executable.path"], event)
		assert.Equal(t, int64(os.Getpid()), m["process.parent_pid"], event)
		return m
	}
	m := common("kernel.bpf_load")
	assert.Equal(t, "bpf", m["k8ssec.syscall.name"])
	assert.Equal(t, int64(bpfFd), m["k8ssec.syscall.result"])
	assert.Equal(t, int64(1), m["k8ssec.bpf.prog_type"])
	assert.Equal(t, int64(2), m["k8ssec.bpf.insn_count"])
	assert.Equal(t, "k8ssec_t", m["k8ssec.bpf.prog_name"])

	m = common("process.memfd_create")
	assert.Equal(t, "k8ssec-mfd", m["k8ssec.memfd.name"])
	assert.Equal(t, int64(unix.MFD_CLOEXEC), m["k8ssec.memfd.flags"])
	assert.Equal(t, int64(memfd), m["k8ssec.syscall.result"])

	m = common("namespace.setns")
	assert.Equal(t, int64(nsFd), m["k8ssec.namespace.fd"])
	assert.Equal(t, []any{"uts"}, m["k8ssec.namespace.types"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common("namespace.unshare")
	assert.Equal(t, "unshare", m["k8ssec.syscall.name"])
	assert.Equal(t, []any{"mnt"}, m["k8ssec.namespace.types"])
	assert.Equal(t, int64(unix.CLONE_NEWNS), m["k8ssec.namespace.flags"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	var tmpfs map[string]any
	require.Eventually(t, func() bool {
		for _, lr := range find(sink, "namespace.mount", pid) {
			if a := attrMap(lr); a["k8ssec.mount.fstype"] == "tmpfs" {
				tmpfs = a
			}
		}
		return tmpfs != nil
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "k8ssec-src", tmpfs["k8ssec.mount.source"])
	assert.Equal(t, mnt, tmpfs["k8ssec.mount.target"])
	assert.Equal(t, int64(unix.MS_NOSUID), tmpfs["k8ssec.mount.flags"])
	assert.Equal(t, int64(0), tmpfs["k8ssec.syscall.result"])

	m = common("process.ptrace")
	assert.Equal(t, "PTRACE_ATTACH", m["k8ssec.ptrace.request"])
	assert.Equal(t, int64(traced), m["k8ssec.ptrace.target_pid"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common("privilege.capset")
	assert.Equal(t, int64(capEff), m["k8ssec.capabilities.effective"].(int64)&0xffffffff)
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common("privilege.setgid")
	assert.Equal(t, "setgid", m["k8ssec.syscall.name"])
	assert.Equal(t, int64(0), m["k8ssec.privilege.old.real_id"])
	assert.Equal(t, int64(0), m["k8ssec.privilege.old.effective_id"])
	assert.Equal(t, int64(65534), m["k8ssec.privilege.new.real_id"])
	assert.Equal(t, int64(65534), m["k8ssec.privilege.new.effective_id"])
	assert.Equal(t, int64(65534), m["k8ssec.privilege.new.saved_id"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])

	m = common("privilege.setuid")
	assert.Equal(t, "setuid", m["k8ssec.syscall.name"])
	assert.Equal(t, int64(0), m["k8ssec.privilege.old.effective_id"])
	assert.Equal(t, int64(65534), m["k8ssec.privilege.new.effective_id"])
	assert.Equal(t, int64(65534), m["k8ssec.privilege.new.real_id"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])
	assert.Equal(t, int64(65534), m["process.group.id"], "setgid came first")
}

func TestUnshareCommand(t *testing.T) {
	requireRoot(t)
	unshare, err := exec.LookPath("unshare")
	require.NoError(t, err, "unshare(1) comes with util-linux, on every Debian machine")
	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	cmd := cg.command(unshare, "-n", "true")
	require.NoError(t, cmd.Run())
	m := attrMap(waitFor(t, sink, "namespace.unshare", cmd.Process.Pid))
	assert.Equal(t, []any{"net"}, m["k8ssec.namespace.types"])
	assert.Equal(t, int64(unix.CLONE_NEWNET), m["k8ssec.namespace.flags"])
	assert.Equal(t, int64(0), m["k8ssec.syscall.result"])
	assert.Equal(t, unshare, m["process.executable.path"])
}

func TestMemfdExecIsFileless(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	sink := new(consumertest.LogsSink)
	rcv := startReceiver(t, newTelemetry(t), sink, func(c *Config) { c.CgroupPath = cg.path })
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()
	cmd := helperCommand(cg, "memfd-exec")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	pid := cmd.Process.Pid
	m := attrMap(waitFor(t, sink, "process.memfd_create", pid))
	assert.Equal(t, "k8ssec-fileless", m["k8ssec.memfd.name"])
	fd := m["k8ssec.syscall.result"].(int64)

	var execs []map[string]any
	require.Eventually(t, func() bool {
		execs = execs[:0]
		for _, lr := range find(sink, "process.exec", pid) {
			execs = append(execs, attrMap(lr))
		}
		return len(execs) == 2 // the helper, then the memfd
	}, 10*time.Second, 10*time.Millisecond)
	assert.NotContains(t, execs[0], "k8ssec.process.fileless")
	// The kernel's name of the file that ran, a memfd, whatever path named it.
	assert.Equal(t, "/memfd:k8ssec-fileless", execs[1]["process.executable.path"])
	assert.Equal(t, filepath.Join("/proc/self/fd", fmt.Sprint(fd)), execs[1]["k8ssec.process.requested_path"])
	assert.Equal(t, true, execs[1]["k8ssec.process.fileless"])
	assert.Equal(t, []any{"fileless"}, execs[1]["process.command_args"])
}

func TestPrivMappingHelpers(t *testing.T) {
	m := pcommon.NewMap()
	putNamespaceTypes(m, unix.CLONE_NEWNET|unix.CLONE_NEWPID|0x11 /* SIGCHLD */, probe.OpClone)
	v, _ := m.Get("k8ssec.namespace.types")
	assert.Equal(t, []any{"pid", "net"}, v.Slice().AsRaw())
	putNamespaceTypes(m, 0x80, probe.OpUnshare)
	v, _ = m.Get("k8ssec.namespace.types")
	assert.Equal(t, []any{"time"}, v.Slice().AsRaw())
}
