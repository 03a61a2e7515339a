package ebpfreceiver

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/podidentity"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadata"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

const (
	maxBatch          = 512                    // records per ConsumeLogs
	flushInterval     = 100 * time.Millisecond // longest a read record waits for its batch
	lossPollInterval  = time.Second
	lossWarnInterval  = 10 * time.Second
	procRoot          = "/proc"
	receiverTransport = "ebpf"
)

type ebpfReceiver struct {
	set  receiver.Settings
	cfg  *Config
	next consumer.Logs
	// nextMetrics gets the kernel event counts (metrics.go); nil without a metrics pipeline.
	nextMetrics consumer.Metrics
	startOnce   sync.Once
	startErr    error
	forget      func() // drops it from the factory's shared set
	started     pcommon.Timestamp
	readTotal   [probe.NumKinds]atomic.Int64
	tel         *metadata.TelemetryBuilder
	obsrep      *receiverhelper.ObsReport

	probe  *probe.Probe
	reader *probe.Reader
	clock  probe.Clock
	procs  *procCache
	pods   *podidentity.Resolver // container and pod of each event's process
	// forkRecords: process.fork is wanted. Without it, the forks the kernel
	// reports (CLONE_PARENT only) update the process cache and make no record.
	forkRecords bool

	// reader goroutine state
	now     pcommon.Timestamp
	cmdline []byte
	strings *interner // comms, paths and executables, shared between events
	// execIDPrefix starts every exec id: this node and this boot.
	execIDPrefix string
	read         [probe.NumKinds]int64

	// loss accounting
	lossMu       sync.Mutex
	lastLost     [probe.NumKinds]uint64
	unwarnedLost uint64
	lastWarn     time.Time
	lastKills    uint64
	lastEscKills uint64
	lastDenials  uint64

	// shell commands: the bash binaries to probe, found by the reader in
	// exec records and probed by their own goroutine (an ELF read each)
	uprobes     []probe.Uprobe
	shellQueue  chan shellExec
	shellWG     sync.WaitGroup
	shellWarned bool

	kindAttrs [probe.NumKinds]metric.AddOption
	lossPoll  time.Duration
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	// unregister withdraws the Killer registered at Start.
	unregister func()
}

func newEBPFReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*ebpfReceiver, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrep, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              receiverTransport,
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	r := &ebpfReceiver{set: set, cfg: cfg, next: next, tel: tel, obsrep: obsrep, lossPoll: lossPollInterval}
	for k := range probe.NumKinds {
		r.kindAttrs[k] = metric.WithAttributeSet(attribute.NewSet(attribute.String("event.name", probe.Kind(k).String())))
	}
	return r, nil
}

// Start loads the programs once, whichever of the logs and metrics pipelines
// starts first.
func (r *ebpfReceiver) Start(ctx context.Context, _ component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx) })
	return r.startErr
}

func (r *ebpfReceiver) start(ctx context.Context) error {
	if r.next == nil { // a metrics pipeline only: the events are counted, then dropped
		r.next = discardLogs
	}
	r.started = pcommon.NewTimestampFromTime(time.Now())
	uprobes, err := r.cfg.resolveUprobes()
	if err != nil {
		return err
	}
	p, err := probe.Load(probe.Config{
		RingBufferSize:   r.cfg.RingBufferSize,
		MaxArgs:          r.cfg.MaxArgs,
		IgnoreComms:      r.cfg.IgnoreComms,
		CgroupPath:       r.cfg.CgroupPath,
		SkipExec:         !r.cfg.wants(eventProcessExec),
		SkipExit:         !r.cfg.wants(eventProcessExit),
		SkipFork:         !r.cfg.wants(eventProcessFork),
		FileKinds:        r.cfg.fileKinds(),
		FilePrefixes:     r.cfg.FilePrefixes,
		NetKinds:         r.cfg.netKinds(),
		Ports:            r.cfg.PortsOfInterest,
		PrivKinds:        r.cfg.privKinds(),
		KillPaths:        r.cfg.Enforcement.KillPaths,
		KillComms:        r.cfg.Enforcement.KillComms,
		DenyExecPaths:    r.cfg.Enforcement.DenyExecPaths,
		ContainerPaths:   r.cfg.Enforcement.ContainerPaths,
		ShellCommands:    r.cfg.ShellCommands,
		ShellBinaries:    hostShells(),
		Uprobes:          uprobes,
		Escalation:       r.cfg.wants(eventPrivEscalation),
		KillOnEscalation: r.cfg.Enforcement.KillOnEscalation,

		// runc's init stages are CLONE_PARENT children of its re-executed init:
		// without their fork, their mounts and namespaces would carry no executable.
		ForkCloneParentOnly: r.cfg.wants(eventProcessExec),
	})
	if err != nil {
		return err
	}
	r.uprobes = p.Uprobes()
	for _, err := range p.ShellErrors {
		r.set.Logger.Warn("ebpf receiver: a bash binary cannot be probed: its commands are not reported", zap.Error(err))
	}
	for object, err := range p.Unavailable {
		r.set.Logger.Error("ebpf receiver: these programs could not be loaded on this kernel; their events are off, the others run",
			zap.String("programs", object), zap.Error(err))
	}
	if len(p.Hooks) > 0 {
		r.set.Logger.Info("ebpf receiver: kernel hooks (fentry preferred, kprobe next; unavailable: that hook's records are not sent)",
			zap.Any("hooks", p.HookModes()))
		for h, st := range p.Hooks {
			if st.Err != nil {
				r.set.Logger.Warn("ebpf receiver: kernel hook unavailable on this kernel", zap.String("hook", h.String()), zap.Error(st.Err))
			}
		}
	}
	if len(p.Missing) > 0 {
		r.set.Logger.Warn("ebpf receiver: tracepoints missing on this kernel (their syscalls are not watched)", zap.Strings("tracepoints", p.Missing))
	}
	rd, err := p.NewReader()
	if err != nil {
		p.Close()
		return err
	}
	pods, err := startPodIdentity(ctx, r.cfg.Kubernetes, r.set.Logger)
	if err != nil {
		rd.Close()
		p.Close()
		return err
	}
	r.probe, r.reader, r.pods = p, rd, pods
	r.clock = probe.NewClock()
	// Seed after attaching: a process that starts meanwhile is in both, and the
	// exec event (newer) overwrites the seed when it is read.
	r.procs = newProcCache(r.cfg.ProcessCacheSize)
	r.forkRecords = r.cfg.wants(eventProcessFork)
	r.procs.seed(procRoot)
	r.strings = newInterner(internSize)
	r.execIDPrefix = execIDPrefix(r.cfg.Kubernetes.NodeName)
	r.set.Logger.Info("ebpf receiver started",
		zap.Strings("events", r.cfg.Events), zap.Int("ring_buffer_size", r.cfg.RingBufferSize),
		zap.Int("processes_seeded", r.procs.len()))
	if r.cfg.Enforcement.enabled() {
		r.set.Logger.Info("ebpf receiver: enforcement on: matching execs are killed (SIGKILL) or refused (BPF LSM)",
			zap.Strings("kill_paths", r.cfg.Enforcement.KillPaths), zap.Strings("kill_comms", r.cfg.Enforcement.KillComms),
			zap.Strings("deny_exec_paths", r.cfg.Enforcement.DenyExecPaths),
			zap.Bool("kill_on_escalation", r.cfg.Enforcement.KillOnEscalation),
			zap.String("cgroup_path", r.cfg.CgroupPath))
		if _, err := os.Readlink("/proc/1/ns/mnt"); err != nil && (len(r.cfg.Enforcement.KillPaths) > 0 || len(r.cfg.Enforcement.DenyExecPaths) > 0) {
			r.set.Logger.Warn("ebpf receiver: pid 1's mount namespace cannot be read: enforcement paths are looked up in the agent's own root, "+
				"not the host's (the DaemonSet needs hostPID and CAP_SYS_PTRACE)", zap.Error(err))
		}
		if missing := p.PolicyPathsNotOnHost; len(missing) > 0 {
			matches := "a file created there later on the host; set container_paths to match containers' files there"
			if r.cfg.Enforcement.ContainerPaths {
				matches = "a file created there later on the host, and any container's file at that path"
			}
			hostRoot := probe.HostRoot() // where the paths were looked up
			if hostRoot == "" {
				hostRoot = "/"
			}
			r.set.Logger.Warn("ebpf receiver: enforcement paths with no file on the host now: they match by path only",
				zap.Strings("paths", missing), zap.String("matches", matches), zap.String("host_root", hostRoot))
		}
	}

	if r.cfg.ShellCommands && p.Unavailable["uprobe"] == nil {
		running := p.AttachRunningShells(procRoot)
		r.set.Logger.Info("ebpf receiver: shell commands: bash readline probed", zap.Strings("binaries", p.ShellBinaries()),
			zap.Int("found_running", running))
		r.startShellProber()
	}

	r.registerKiller()

	// Every kind asked for has its loss series from the start, at 0: a dashboard's
	// rate() or an alert on losses then reads a counter, not an absent series.
	for k := range probe.NumKinds {
		if slices.Contains(r.cfg.Events, probe.Kind(k).String()) {
			r.tel.ReceiverEbpfEventsLost.Add(ctx, 0, r.kindAttrs[k])
		}
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.readLoop(runCtx) }()
	go func() { defer r.wg.Done(); r.lossLoop(runCtx) }()
	if r.nextMetrics != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.metricsLoop(runCtx) }()
	}
	return nil
}

// Shutdown stops reading and unloads the programs. It is safe before Start
// and when called again: what it closed is forgotten.
func (r *ebpfReceiver) Shutdown(context.Context) error {
	if r.forget != nil {
		r.forget()
		r.forget = nil
	}
	if r.unregister != nil {
		r.unregister()
		r.unregister = nil
	}
	if r.cancel != nil {
		r.cancel()
	}
	var errs []error
	if r.reader != nil {
		// The read loop returns on its own before the ring is unmapped;
		// the loss loop has its cancel.
		errs = append(errs, r.reader.Stop())
		r.wg.Wait()
		errs = append(errs, r.reader.Close())
		r.reader = nil
	}
	if r.shellQueue != nil { // the reader, which sends, has returned
		close(r.shellQueue)
		r.shellWG.Wait()
		r.shellQueue = nil
	}
	if r.pods != nil {
		r.pods.Stop()
		r.pods = nil
	}
	if r.probe != nil {
		r.pollLoss() // the final counts, so that the metrics are exact
		errs = append(errs, r.probe.Close())
		r.probe = nil
	}
	r.tel.Shutdown()
	return errors.Join(errs...)
}

func (r *ebpfReceiver) readLoop(ctx context.Context) {
	var ev probe.Event
	batch := newEventBatch()
	n := 0
	flush := func() {
		if n == 0 {
			return
		}
		obsCtx := r.obsrep.StartLogsOp(ctx)
		err := r.next.ConsumeLogs(ctx, batch.logs)
		r.obsrep.EndLogsOp(obsCtx, "ebpf", n, err)
		for k, c := range r.read {
			if c > 0 {
				r.tel.ReceiverEbpfEventsRead.Add(ctx, c, r.kindAttrs[k])
				r.readTotal[k].Add(c)
				r.read[k] = 0
			}
		}
		if err != nil {
			r.set.Logger.Warn("the next consumer refused kernel events", zap.Int("records", n), zap.Error(err))
		}
		batch = newEventBatch()
		n = 0
		r.reader.SetDeadline(time.Time{}) // an empty batch waits for its first record
	}
	for {
		err := r.reader.Read(&ev)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			flush()
			continue
		case errors.Is(err, probe.ErrStopped), errors.Is(err, probe.ErrClosed):
			flush()
			return
		default:
			r.set.Logger.Debug("undecodable ring-buffer record", zap.Error(err))
			continue
		}
		if n == 0 {
			// The batch goes at most flushInterval after its first record,
			// however slowly the rest trickle in.
			now := time.Now()
			r.now = pcommon.NewTimestampFromTime(now)
			r.reader.SetDeadline(now.Add(flushInterval))
		}
		if ev.Kind == probe.KindFork && !r.forkRecords {
			// A CLONE_PARENT fork reported for the cache only (probe.Config.ForkCloneParentOnly).
			r.forkOnlyToCache(&ev)
			continue
		}
		r.appendEvent(batch, &ev)
		r.read[ev.Kind]++
		n++
		if n >= maxBatch {
			flush()
		}
	}
}

func (r *ebpfReceiver) lossLoop(ctx context.Context) {
	t := time.NewTicker(r.lossPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.pollLoss()
		}
	}
}

// pollLoss adds the kernel's new losses to the metric and warns, at most once
// per lossWarnInterval, with what was lost since the last warning.
func (r *ebpfReceiver) pollLoss() {
	lost, err := r.probe.LostCounts()
	if err != nil {
		r.set.Logger.Warn("cannot read the kernel's loss counters", zap.Error(err))
		return
	}
	r.lossMu.Lock()
	defer r.lossMu.Unlock()
	if r.cfg.Enforcement.kills() {
		if kills, err := r.probe.KillCount(); err != nil {
			r.set.Logger.Warn("cannot read the kernel's enforcement kill counter", zap.Error(err))
		} else if kills > r.lastKills {
			r.tel.ReceiverEbpfEnforcementKills.Add(context.Background(), int64(kills-r.lastKills))
			r.lastKills = kills
		}
	}
	if r.cfg.Enforcement.KillOnEscalation {
		if kills, err := r.probe.EscalationKillCount(); err != nil {
			r.set.Logger.Warn("cannot read the kernel's escalation kill counter", zap.Error(err))
		} else if kills > r.lastEscKills {
			r.tel.ReceiverEbpfEnforcementKills.Add(context.Background(), int64(kills-r.lastEscKills))
			r.lastEscKills = kills
		}
	}
	if len(r.cfg.Enforcement.DenyExecPaths) > 0 {
		if denials, err := r.probe.DenyCount(); err != nil {
			r.set.Logger.Warn("cannot read the kernel's enforcement deny counter", zap.Error(err))
		} else if denials > r.lastDenials {
			r.tel.ReceiverEbpfEnforcementDenials.Add(context.Background(), int64(denials-r.lastDenials))
			r.lastDenials = denials
		}
	}
	var fresh uint64
	for k, v := range lost {
		if d := v - r.lastLost[k]; d > 0 {
			r.tel.ReceiverEbpfEventsLost.Add(context.Background(), int64(d), r.kindAttrs[k])
			fresh += d
		}
	}
	r.lastLost = lost
	r.unwarnedLost += fresh
	if r.unwarnedLost > 0 && time.Since(r.lastWarn) >= lossWarnInterval {
		r.set.Logger.Warn("kernel events lost: the ring buffer was full; raise ring_buffer_size or add noisy binaries to ignore_comms",
			zap.Uint64("lost", r.unwarnedLost), zap.Any("lost_total", lostByKind(lost)), zap.Int("ring_buffer_size", r.cfg.RingBufferSize))
		r.unwarnedLost = 0
		r.lastWarn = time.Now()
	}
}

// lostByKind names the non-zero loss totals.
func lostByKind(lost [probe.NumKinds]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range lost {
		if v > 0 {
			out[probe.Kind(k).String()] = v
		}
	}
	return out
}

// execIDPrefix is "<node>:<boot>:": the node's name (its hostname without
// one) and the first 8 characters of this boot's id, so that exec ids from
// two nodes, or from two boots of one, never collide.
func execIDPrefix(nodeName string) string {
	if nodeName == "" {
		nodeName, _ = os.Hostname()
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return nodeName + ":" + string(boot[:min(8, len(boot))]) + ":"
}
