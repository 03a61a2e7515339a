package ebpfreceiver

import (
	"bytes"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Attribute names. process.* are OpenTelemetry semantic conventions; the
// project prefix is used only where no convention exists.
const (
	attrPid                  = "process.pid"
	attrParentPid            = "process.parent_pid"
	attrThreadID             = "thread.id"
	attrExecutablePath       = "process.executable.path"
	attrExecutableName       = "process.executable.name"
	attrWorkingDirectory     = "process.working_directory"
	attrCommandLine          = "process.command_line"
	attrCommandArgs          = "process.command_args"
	attrUserID               = "process.user.id"      // effective
	attrRealUserID           = "process.real_user.id" // real
	attrGroupID              = "process.group.id"     // effective
	attrRealGroupID          = "process.real_group.id"
	attrExitCode             = "process.exit.code"
	attrParentExecutablePath = "process.parent.executable.path"
	attrParentExecutableName = "process.parent.executable.name"
	attrParentCommandLine    = "process.parent.command_line"
	attrComm                 = "k8ssec.process.comm"
	attrExitSignal           = "k8ssec.process.exit.signal"
	attrCoreDumped           = "k8ssec.process.exit.core_dumped"
	attrArgsTruncated        = "k8ssec.process.command_args.truncated"
	attrCgroupID             = "k8ssec.linux.cgroup.id"
	attrMntNs                = "k8ssec.linux.mnt_ns"
	attrPidNs                = "k8ssec.linux.pid_ns"
	attrStartTime            = "k8ssec.process.start_time" // CLOCK_BOOTTIME ns: with process.pid, names the process across PID reuse
	attrFileless             = "k8ssec.process.fileless"   // the executable is a memfd
	attrEnforcementAction    = "k8ssec.enforcement.action" // "sigkill": the exec was killed by enforcement
	attrEnforcementRule      = "k8ssec.enforcement.rule"   // the kill_paths or kill_comms entry matched
	attrDrift                = "k8ssec.process.drift"      // the executable was written after the receiver started
	attrTTY                  = "k8ssec.process.tty"        // process.exec: the process has a controlling terminal (an interactive session)
	attrExecID               = "k8ssec.process.exec_id"    // unique per exec: node, boot time, pid
	attrParentExecID         = "k8ssec.process.parent.exec_id"
	attrChildPid             = "k8ssec.process.child.pid"      // process.fork: the new process
	attrHook                 = "k8ssec.hook"                   // the kernel function that saw what no syscall tracepoint did
	attrRequestedPath        = "k8ssec.process.requested_path" // process.exec: the path execve received, when the kernel resolved another
	attrVpid                 = "k8ssec.process.vpid"           // process.exec from a container runtime: the pid in its own pid namespace (1: the container's init)

	enforcementSigkill = "sigkill"
	enforcementDeny    = "deny" // BPF LSM refused the exec: it never happened
)

// forkOnlyToCache gives a forked child its forker's executable, when the
// child's parent (CLONE_PARENT) is not the forker and process.fork records are off.
func (r *ebpfReceiver) forkOnlyToCache(ev *probe.Event) {
	if self, ok := r.procs.get(ev.Tgid); ok {
		r.procs.put(ev.ChildTgid, self)
	}
}

// appendEvent adds ev to b as one log record under its process's resource,
// and updates the process cache.
func (r *ebpfReceiver) appendEvent(b *eventBatch, ev *probe.Event) {
	self, _ := r.procs.get(ev.Tgid)
	var exec *procInfo // process.exec: the program the process now runs (or was refused)
	if ev.Kind == probe.KindExec {
		exec = r.execInfo(ev)
		if ev.Flags&probe.FlagDenied == 0 { // a refused exec left the process as it was
			self = exec
			r.procs.put(ev.Tgid, self)
			if r.shellQueue != nil && probe.IsShell(exec.exe) {
				r.probeShell(ev.Tgid, exec.exe)
			}
		}
	}
	parent, _ := r.procs.get(ev.Ppid)
	lrs, res, isNew := b.recordsFor(keyOf(ev, self, parent))
	if isNew {
		r.putProcess(res, ev, self, parent)
	}

	lr := lrs.AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.clock.Wall(ev.Ktime)))
	lr.SetObservedTimestamp(r.now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(ownAttributes(ev)) // one allocation, no growth
	if ev.Pid != ev.Tgid {
		attrs.PutInt(attrThreadID, int64(ev.Pid))
	}

	switch ev.Kind {
	case probe.KindExec:
		lr.SetEventName(eventProcessExec)
		r.putExec(lr, attrs, ev, exec)
		if parent != nil && runtimeParents[path.Base(parent.exe)] {
			// The container's entrypoint (pid 1 of its namespace) and an exec into the
			// container (kubectl exec) have the same parent: only the pid tells them apart.
			if vpid, ok := nsPid(ev.Tgid); ok {
				attrs.PutInt(attrVpid, int64(vpid))
			}
		}
	case probe.KindFork:
		// The child runs its parent's executable until it execs: the cache says so.
		lr.SetEventName(eventProcessFork)
		attrs.PutInt(attrChildPid, int64(ev.ChildTgid))
		if self != nil {
			r.procs.put(ev.ChildTgid, self)
		}
		lr.Body().SetStr(r.strings.get(ev.CommBytes()))
	case probe.KindExit:
		lr.SetEventName(eventProcessExit)
		attrs.PutInt(attrExitCode, int64(ev.ExitCode))
		if ev.Signal != 0 {
			attrs.PutInt(attrExitSignal, int64(ev.Signal))
		}
		if ev.CoreDumped {
			attrs.PutBool(attrCoreDumped, true)
		}
		r.procs.remove(ev.Tgid)
	case probe.KindFileOpen, probe.KindFileUnlink, probe.KindFileRename, probe.KindFileChmod, probe.KindFileChown,
		probe.KindFileLink, probe.KindFileSymlink:
		appendFile(lr, attrs, ev, r.strings)
	case probe.KindNetConnect, probe.KindNetAccept, probe.KindNetBind, probe.KindNetListen, probe.KindNetTCPState:
		appendNet(lr, attrs, ev)
	case probe.KindPrivEscalation:
		appendEscalation(lr, attrs, ev)
	case probe.KindNetSocket:
		appendSocket(lr, attrs, ev)
	case probe.KindFdDup:
		appendFdDup(lr, attrs, ev)
	case probe.KindShellCommand:
		appendShell(lr, attrs, ev)
	case probe.KindUprobe:
		appendUprobe(lr, attrs, ev, r.uprobes)
	default:
		if probe.IsPrivKind(ev.Kind) {
			appendPriv(lr, attrs, ev)
		}
	}
}

// ownAttributes is how many attributes a record of ev's kind has of its
// own (at most, for kinds that vary), thread.id included: room for them in
// one allocation and no more, since the slots of a record's map are a good
// part of its memory.
func ownAttributes(ev *probe.Event) int {
	n := 0
	if ev.Pid != ev.Tgid {
		n++ // thread.id
	}
	if ev.Hook != probe.HookNone {
		n++ // k8ssec.hook
	}
	switch kind := ev.Kind; {
	case kind == probe.KindFileOpen:
		n += 7 // path, name, directory, result, flags, intent, path_resolved
		if creates(ev.FileFlags) {
			n++ // mode
		}
		if ev.PathResolved {
			n += 2 // inode, device
			if string(ev.RawPath) != string(ev.Path) {
				n++ // requested_path
			}
		}
		if ev.InodeMatch {
			n++ // watched_hardlink
		}
		if ev.Sensitive != 0 {
			n += 2 // sensitive_kind, target pid
		}
		return n
	case kind == probe.KindExec:
		return n + 12
	case kind == probe.KindExit, kind == probe.KindFork:
		return n + 3
	case kind == probe.KindShellCommand:
		return n + 2 // command, truncated
	case kind == probe.KindUprobe:
		return n + 6 // binary, symbol, return, args, truncated, unreadable
	case probe.IsPrivKind(kind):
		return n + 9
	case kind == probe.KindPrivEscalation:
		return n + 11
	case kind == probe.KindNetSocket, kind == probe.KindFdDup, kind == probe.KindNetConnect && ev.Family == unix.AF_UNIX:
		return n + socketAttributes(kind)
	default: // the other file kinds, network
		return n + 8
	}
}

// execInfo is the program an exec record names: its executable, command
// line and exec id.
func (r *ebpfReceiver) execInfo(ev *probe.Event) *procInfo {
	r.cmdline = r.cmdline[:0]
	ev.EachArg(func(a []byte) {
		if len(r.cmdline) > 0 {
			r.cmdline = append(r.cmdline, ' ')
		}
		r.cmdline = append(r.cmdline, a...)
	})
	exe := ev.Exe // as the kernel resolved it
	if exe == nil {
		exe = ev.Filename // deeper or longer than the kernel walks: as execve received it
	}
	return &procInfo{exe: r.strings.get(exe), commandLine: string(r.cmdline), execID: r.execID(ev)}
}

// putExec adds what only the exec record says: the arguments, the working
// directory, and how the exec went. A refused exec's resource is the process
// that asked, so the record names the program it was refused.
func (r *ebpfReceiver) putExec(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event, exec *procInfo) {
	if ev.Cwd != nil {
		attrs.PutStr(attrWorkingDirectory, r.strings.get(ev.Cwd))
	}
	if ev.Exe != nil && !bytes.Equal(ev.Exe, ev.Filename) {
		// A symlink, a relative path, "//", a PATH search, or a script (whose interpreter runs).
		attrs.PutStr(attrRequestedPath, r.strings.get(ev.Filename))
	}
	args := attrs.PutEmptySlice(attrCommandArgs)
	args.EnsureCapacity(min(int(ev.Argc), probe.MaxArgsCap)) // Argc is the kernel's word; never trust it for sizing
	ev.EachArg(func(a []byte) { args.AppendEmpty().SetStr(string(a)) })
	if ev.Flags&(probe.FlagArgsTruncated|probe.FlagFilenameTruncated) != 0 {
		attrs.PutBool(attrArgsTruncated, true)
	}
	if ev.Flags&probe.FlagMemfd != 0 || strings.HasPrefix(exec.exe, "/memfd:") {
		attrs.PutBool(attrFileless, true)
	}
	if ev.Flags&probe.FlagDrift != 0 {
		attrs.PutBool(attrDrift, true)
	}
	if ev.Flags&probe.FlagTTY != 0 {
		attrs.PutBool(attrTTY, true)
	}
	switch {
	case ev.Flags&probe.FlagDenied != 0:
		attrs.PutStr(attrExecutablePath, exec.exe)
		attrs.PutStr(attrExecutableName, path.Base(exec.exe))
		attrs.PutStr(attrCommandLine, exec.commandLine)
		attrs.PutStr(attrExecID, exec.execID)
		attrs.PutStr(attrEnforcementAction, enforcementDeny)
		attrs.PutStr(attrEnforcementRule, r.policyEntry(ev, exec))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	case ev.Flags&probe.FlagKilledPath != 0:
		attrs.PutStr(attrEnforcementAction, enforcementSigkill)
		attrs.PutStr(attrEnforcementRule, r.policyEntry(ev, exec))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	case ev.Flags&probe.FlagKilledComm != 0:
		attrs.PutStr(attrEnforcementAction, enforcementSigkill)
		attrs.PutStr(attrEnforcementRule, r.strings.get(ev.CommBytes()))
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	lr.Body().SetStr(exec.commandLine)
}

// policyEntry is the kill_paths or deny_exec_paths entry an enforced exec
// matched.
func (r *ebpfReceiver) policyEntry(ev *probe.Event, exec *procInfo) string {
	entry := ""
	if r.probe != nil {
		entry = r.probe.PolicyEntry(ev)
	}
	if entry == "" {
		entry = exec.exe
	}
	return entry
}

// putProcess fills the resource of a process new to the batch: who it is,
// its program and its parent's as the process cache knows them, and its
// container and pod.
func (r *ebpfReceiver) putProcess(res pcommon.Map, ev *probe.Event, self, parent *procInfo) {
	res.EnsureCapacity(29) // with a pod's identity: one allocation, no growth
	id := identityOf(r.pods, ev.CgroupID, ev.Tgid)
	id.Attributes(res)
	res.PutInt(attrPid, int64(ev.Tgid))
	res.PutInt(attrParentPid, int64(ev.Ppid))
	res.PutInt(attrUserID, int64(ev.Euid))
	res.PutInt(attrRealUserID, int64(ev.Uid))
	res.PutInt(attrGroupID, int64(ev.Egid))
	res.PutInt(attrRealGroupID, int64(ev.Gid))
	res.PutStr(attrComm, r.strings.get(ev.CommBytes()))
	res.PutInt(attrCgroupID, int64(ev.CgroupID))
	res.PutInt(attrMntNs, int64(ev.MntNs))
	res.PutInt(attrPidNs, int64(ev.PidNs))
	res.PutInt(attrStartTime, int64(ev.StartTime))
	if self != nil {
		res.PutStr(attrExecutablePath, self.exe)
		res.PutStr(attrExecutableName, path.Base(self.exe))
		res.PutStr(attrCommandLine, self.commandLine)
		putExecID(res, attrExecID, self.execID)
	}
	if parent != nil {
		res.PutStr(attrParentExecutablePath, parent.exe)
		res.PutStr(attrParentExecutableName, path.Base(parent.exe))
		res.PutStr(attrParentCommandLine, parent.commandLine)
		putExecID(res, attrParentExecID, parent.execID)
	}
}

// execID names one exec uniquely across a cluster's nodes and reboots, the
// way Tetragon's exec_id does: the node, the exec's boot-clock time and the
// pid. A process's events and its children's carry it, so that a process
// tree can be rebuilt from events alone.
func (r *ebpfReceiver) execID(ev *probe.Event) string {
	return r.execIDPrefix + strconv.FormatUint(ev.Ktime, 10) + ":" + strconv.FormatUint(uint64(ev.Tgid), 10)
}

func putExecID(attrs pcommon.Map, name, id string) {
	if id != "" { // processes seeded from /proc have none: their exec was not seen
		attrs.PutStr(name, id)
	}
}
