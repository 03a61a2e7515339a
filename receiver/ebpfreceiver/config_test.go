package ebpfreceiver

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadata"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

func TestDefaultConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 8<<20, cfg.RingBufferSize)
	assert.Equal(t, 16, cfg.MaxArgs)
	assert.Empty(t, cfg.IgnoreComms)
	assert.Equal(t, []string{"process.exec", "process.exit", "file.open", "file.unlink", "file.rename", "file.chmod", "file.chown",
		"file.link", "file.symlink", "network.connect", "network.accept", "network.bind", "network.listen", "network.tcp_state",
		"network.socket", "process.fd_dup",
		"privilege.setuid", "privilege.setgid", "privilege.capset", "namespace.setns", "namespace.unshare",
		"namespace.mount", "kernel.module_load", "process.ptrace", "kernel.bpf_load", "process.memfd_create", "privilege.escalation"}, cfg.Events)
	assert.Empty(t, cfg.PortsOfInterest)
	assert.Equal(t, []string{"/etc", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/root/.ssh", "/var/run/secrets", "/run/secrets", "/boot", "/lib/modules",
		"/root/.bashrc", "/root/.profile", "/root/.bash_profile", "/root/.bash_login", "/root/.zshrc",
		"/root/.bash_history", "/root/.ash_history", "/root/.zsh_history", "/root/.history",
		"/var/spool/cron", "/var/log", "/dev/mem", "/dev/kmem", "/dev/port",
		"/dev/sda", "/dev/sda1", "/dev/vda", "/dev/vda1", "/dev/xvda", "/dev/xvda1", "/dev/nvme0n1", "/dev/nvme0n1p1",
		"/proc/sys/kernel/randomize_va_space", "/proc/sys/kernel/sysrq", "/proc/sysrq-trigger", "/proc/sched_debug",
		"/sys/kernel/debug/sched"}, cfg.FilePrefixes)
	assert.Equal(t, 32768, cfg.ProcessCacheSize)
	assert.Empty(t, cfg.CgroupPath)
	assert.Empty(t, cfg.Enforcement.KillPaths)
	assert.Empty(t, cfg.Enforcement.KillComms)
	assert.False(t, cfg.Enforcement.enabled())
}

func TestConfigUnmarshalAndValidate(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"ring_buffer_size":  1 << 16,
		"max_args":          4,
		"ignore_comms":      []any{"kubelet", "containerd"},
		"events":            []any{"process.exec", "file.open"},
		"file_prefixes":     []any{"/opt/app"},
		"ports_of_interest": []any{443, 3333},
		"enforcement": map[string]any{
			"kill_paths":      []any{"/usr/bin/nc"},
			"kill_comms":      []any{"xmrig"},
			"deny_exec_paths": []any{"/usr/bin/ncat"},
		},
	}).Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.False(t, cfg.Enforcement.KillOnEscalation)
	assert.Equal(t, []string{"kubelet", "containerd"}, cfg.IgnoreComms)
	assert.True(t, cfg.wants("process.exec"))
	assert.False(t, cfg.wants("process.exit"))
	assert.Equal(t, []string{"/opt/app"}, cfg.FilePrefixes)
	assert.Equal(t, []probe.Kind{probe.KindFileOpen}, cfg.fileKinds())
	assert.Equal(t, []uint16{443, 3333}, cfg.PortsOfInterest)
	assert.Empty(t, cfg.netKinds())
	assert.Empty(t, cfg.privKinds())
	assert.Equal(t, []string{"/usr/bin/nc"}, cfg.Enforcement.KillPaths)
	assert.Equal(t, []string{"xmrig"}, cfg.Enforcement.KillComms)
	assert.Equal(t, []string{"/usr/bin/ncat"}, cfg.Enforcement.DenyExecPaths)
	assert.True(t, cfg.Enforcement.enabled())

	for name, edit := range map[string]func(*Config){
		"ring not a power of two": func(c *Config) { c.RingBufferSize = 5000 },
		"ring below a page":       func(c *Config) { c.RingBufferSize = 2048 },
		"ring above 1 GiB":        func(c *Config) { c.RingBufferSize = 2 << 30 },
		"max_args zero":           func(c *Config) { c.MaxArgs = 0 },
		"max_args above cap":      func(c *Config) { c.MaxArgs = 129 },
		"no events":               func(c *Config) { c.Events = nil },
		"unknown event":           func(c *Config) { c.Events = []string{"file.read"} },
		"relative prefix":         func(c *Config) { c.FilePrefixes = []string{"etc"} },
		"long prefix":             func(c *Config) { c.FilePrefixes = []string{"/" + strings.Repeat("x", 255)} },
		"file events no prefix":   func(c *Config) { c.FilePrefixes = nil },
		"port zero":               func(c *Config) { c.PortsOfInterest = []uint16{0} },
		"empty comm":              func(c *Config) { c.IgnoreComms = []string{""} },
		"cache size":              func(c *Config) { c.ProcessCacheSize = 0 },
		"relative kill path":      func(c *Config) { c.Enforcement.KillPaths = []string{"bin/nc"} },
		"empty kill path":         func(c *Config) { c.Enforcement.KillPaths = []string{""} },
		"long kill path":          func(c *Config) { c.Enforcement.KillPaths = []string{"/" + strings.Repeat("x", 255)} },
		"empty kill comm":         func(c *Config) { c.Enforcement.KillComms = []string{""} },
		"relative deny path":      func(c *Config) { c.Enforcement.DenyExecPaths = []string{"usr/bin/nc"} },
		"kill comm ignored": func(c *Config) {
			c.IgnoreComms = []string{"xmrig"}
			c.Enforcement.KillComms = []string{"xmrig"}
		},
		"kill on escalation without its event": func(c *Config) {
			c.Events = []string{"process.exec"}
			c.Enforcement.KillOnEscalation = true
		},
		"enforcement without exec": func(c *Config) {
			c.Events = []string{"process.exit"}
			c.Enforcement.KillComms = []string{"xmrig"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := NewFactory().CreateDefaultConfig().(*Config)
			edit(c)
			assert.Error(t, c.Validate())
		})
	}
}

func TestFactoryCreatesWithoutLoading(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, rcv.Shutdown(context.Background()), "shutdown before start")
}

func TestJoinArgs(t *testing.T) {
	assert.Equal(t, "sleep 10", joinArgs([]byte("sleep\x0010\x00")))
	assert.Empty(t, joinArgs(nil))
}

func TestProcCacheSeedAndBound(t *testing.T) {
	c := newProcCache(2)
	c.put(1, &procInfo{exe: "/a"})
	c.put(2, &procInfo{exe: "/b"})
	c.put(3, &procInfo{exe: "/c"})
	_, ok := c.get(1)
	assert.False(t, ok, "least recently used entry evicted")
	assert.Equal(t, 2, c.len())

	big := newProcCache(1 << 16)
	big.seed("/proc")
	self, ok := big.get(uint32(selfPid()))
	require.True(t, ok)
	assert.Equal(t, selfExe(t), self.exe)
}
