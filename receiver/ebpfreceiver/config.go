package ebpfreceiver

import (
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Event names this receiver can emit, as `events` lists them.
const (
	eventProcessExec = "process.exec"
	eventProcessExit = "process.exit"
)

var knownEvents = []string{eventProcessExec, eventProcessExit}

const (
	defaultRingBufferSize   = 8 << 20 // 8 MiB: ~40,000 exec records of a typical size
	defaultMaxArgs          = 16
	defaultProcessCacheSize = 32768 // pid_max's default; entries are ~200 bytes
	minRingBufferSize       = 4096
	maxRingBufferSize       = 1 << 30
)

// Config is the ebpf receiver's configuration. `ebpf:` with no settings works.
type Config struct {
	// Events are the event kinds to emit. Default: all process events.
	Events []string `mapstructure:"events"`
	// RingBufferSize is the kernel ring buffer's size in bytes: a power of two,
	// 4096 (one page) to 1 GiB. Default 8 MiB.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// MaxArgs is how many argv entries an exec event keeps (1 to 128; at most
	// 4 KiB of them in all). Default 16.
	MaxArgs int `mapstructure:"max_args"`
	// IgnoreComms are task names (comm, as in /proc/<pid>/comm) whose events
	// the kernel drops before they reach the ring buffer. Names longer than 15
	// bytes match on their first 15, as the kernel keeps them. Default: none.
	IgnoreComms []string `mapstructure:"ignore_comms"`
	// CgroupPath, when set, is a cgroup v2 directory: only processes in it or
	// below it are reported (e.g. /sys/fs/cgroup/kubepods.slice for container
	// processes only). Default: every process.
	CgroupPath string `mapstructure:"cgroup_path"`
	// ProcessCacheSize bounds the pid -> executable cache that gives exit
	// events their executable and exec events their parent's. Default 32768.
	ProcessCacheSize int `mapstructure:"process_cache_size"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		Events:           slices.Clone(knownEvents),
		RingBufferSize:   defaultRingBufferSize,
		MaxArgs:          defaultMaxArgs,
		IgnoreComms:      []string{},
		ProcessCacheSize: defaultProcessCacheSize,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	n := c.RingBufferSize
	if n < minRingBufferSize || n > maxRingBufferSize || n&(n-1) != 0 {
		errs = append(errs, fmt.Errorf("ring_buffer_size %d: must be a power of two from %d to %d", n, minRingBufferSize, maxRingBufferSize))
	}
	if c.MaxArgs < 1 || c.MaxArgs > probe.MaxArgsCap {
		errs = append(errs, fmt.Errorf("max_args %d: must be from 1 to %d", c.MaxArgs, probe.MaxArgsCap))
	}
	if len(c.Events) == 0 {
		errs = append(errs, fmt.Errorf("events: list at least one of %v", knownEvents))
	}
	for _, e := range c.Events {
		if !slices.Contains(knownEvents, e) {
			errs = append(errs, fmt.Errorf("events: unknown event %q (known: %v)", e, knownEvents))
		}
	}
	for _, comm := range c.IgnoreComms {
		if comm == "" {
			errs = append(errs, errors.New("ignore_comms: empty name"))
		}
	}
	if c.ProcessCacheSize < 1 {
		errs = append(errs, fmt.Errorf("process_cache_size %d: must be at least 1", c.ProcessCacheSize))
	}
	return errors.Join(errs...)
}

func (c *Config) wants(event string) bool { return slices.Contains(c.Events, event) }
