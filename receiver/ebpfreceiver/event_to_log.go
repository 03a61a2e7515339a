package ebpfreceiver

import (
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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
	attrFileless             = "k8ssec.process.fileless"   // the executable is a memfd
	attrEnforcementAction    = "k8ssec.enforcement.action" // "sigkill": the exec was killed by enforcement
	attrEnforcementRule      = "k8ssec.enforcement.rule"   // the kill_paths or kill_comms entry matched
	attrDrift                = "k8ssec.process.drift"      // the executable was written after the receiver started
	attrExecID               = "k8ssec.process.exec_id"    // unique per exec: node, boot time, pid
	attrParentExecID         = "k8ssec.process.parent.exec_id"
	attrChildPid             = "k8ssec.process.child.pid" // process.fork: the new process

	enforcementSigkill = "sigkill"
	enforcementDeny    = "deny" // BPF LSM refused the exec: it never happened
)

// appendEvent adds ev to sl as one log record and updates the process cache.
func (r *ebpfReceiver) appendEvent(sl plog.ScopeLogs, ev *probe.Event) {
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.clock.Wall(ev.Ktime)))
	lr.SetObservedTimestamp(r.now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(28) // a file event with its process and parent has 25: one allocation, no growth
	attrs.PutInt(attrPid, int64(ev.Tgid))
	attrs.PutInt(attrParentPid, int64(ev.Ppid))
	if ev.Pid != ev.Tgid {
		attrs.PutInt(attrThreadID, int64(ev.Pid))
	}
	attrs.PutInt(attrUserID, int64(ev.Euid))
	attrs.PutInt(attrRealUserID, int64(ev.Uid))
	attrs.PutInt(attrGroupID, int64(ev.Egid))
	attrs.PutInt(attrRealGroupID, int64(ev.Gid))
	comm := r.strings.get(ev.CommBytes())
	attrs.PutStr(attrComm, comm)
	attrs.PutInt(attrCgroupID, int64(ev.CgroupID))
	attrs.PutInt(attrMntNs, int64(ev.MntNs))
	attrs.PutInt(attrPidNs, int64(ev.PidNs))

	switch ev.Kind {
	case probe.KindExec:
		lr.SetEventName(eventProcessExec)
		exe := r.strings.get(ev.Filename)
		attrs.PutStr(attrExecutablePath, exe)
		attrs.PutStr(attrExecutableName, path.Base(exe))
		if ev.Cwd != nil {
			attrs.PutStr(attrWorkingDirectory, r.strings.get(ev.Cwd))
		}
		args := attrs.PutEmptySlice(attrCommandArgs)
		args.EnsureCapacity(min(int(ev.Argc), probe.MaxArgsCap)) // Argc is the kernel's word; never trust it for sizing
		r.cmdline = r.cmdline[:0]
		ev.EachArg(func(a []byte) {
			args.AppendEmpty().SetStr(string(a))
			if len(r.cmdline) > 0 {
				r.cmdline = append(r.cmdline, ' ')
			}
			r.cmdline = append(r.cmdline, a...)
		})
		cmdline := string(r.cmdline)
		attrs.PutStr(attrCommandLine, cmdline)
		if ev.Flags&(probe.FlagArgsTruncated|probe.FlagFilenameTruncated) != 0 {
			attrs.PutBool(attrArgsTruncated, true)
		}
		if ev.Flags&probe.FlagMemfd != 0 || strings.HasPrefix(exe, "/memfd:") {
			attrs.PutBool(attrFileless, true)
		}
		if ev.Flags&probe.FlagDrift != 0 {
			attrs.PutBool(attrDrift, true)
		}
		execID := r.execID(ev)
		attrs.PutStr(attrExecID, execID)
		switch {
		case ev.Flags&probe.FlagDenied != 0:
			attrs.PutStr(attrEnforcementAction, enforcementDeny)
			attrs.PutStr(attrEnforcementRule, exe)
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
		case ev.Flags&probe.FlagKilledPath != 0:
			attrs.PutStr(attrEnforcementAction, enforcementSigkill)
			attrs.PutStr(attrEnforcementRule, exe)
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
		case ev.Flags&probe.FlagKilledComm != 0:
			attrs.PutStr(attrEnforcementAction, enforcementSigkill)
			attrs.PutStr(attrEnforcementRule, comm)
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
		}
		if parent, ok := r.procs.get(ev.Ppid); ok {
			attrs.PutStr(attrParentExecutablePath, parent.exe)
			attrs.PutStr(attrParentExecutableName, path.Base(parent.exe))
			attrs.PutStr(attrParentCommandLine, parent.commandLine)
			putExecID(attrs, attrParentExecID, parent.execID)
		}
		if ev.Flags&probe.FlagDenied == 0 { // a refused exec left the process as it was
			r.procs.put(ev.Tgid, procInfo{exe: exe, commandLine: cmdline, execID: execID})
		}
		lr.Body().SetStr(cmdline)
	case probe.KindFork:
		// The child runs its parent's executable until it execs: the cache says so.
		lr.SetEventName(eventProcessFork)
		attrs.PutInt(attrChildPid, int64(ev.ChildTgid))
		r.putProcessFromCache(attrs, ev)
		if self, ok := r.procs.get(ev.Tgid); ok {
			r.procs.put(ev.ChildTgid, self)
		}
		lr.Body().SetStr(comm)
	case probe.KindExit:
		lr.SetEventName(eventProcessExit)
		attrs.PutInt(attrExitCode, int64(ev.ExitCode))
		if ev.Signal != 0 {
			attrs.PutInt(attrExitSignal, int64(ev.Signal))
		}
		if ev.CoreDumped {
			attrs.PutBool(attrCoreDumped, true)
		}
		if self, ok := r.procs.get(ev.Tgid); ok {
			attrs.PutStr(attrExecutablePath, self.exe)
			attrs.PutStr(attrExecutableName, path.Base(self.exe))
			attrs.PutStr(attrCommandLine, self.commandLine)
			putExecID(attrs, attrExecID, self.execID)
			r.procs.remove(ev.Tgid)
		}
		if parent, ok := r.procs.get(ev.Ppid); ok {
			attrs.PutStr(attrParentExecutablePath, parent.exe)
			attrs.PutStr(attrParentExecutableName, path.Base(parent.exe))
		}
	case probe.KindFileOpen, probe.KindFileUnlink, probe.KindFileRename, probe.KindFileChmod, probe.KindFileChown,
		probe.KindFileLink, probe.KindFileSymlink:
		r.putProcessFromCache(attrs, ev)
		appendFile(lr, attrs, ev, r.strings)
	case probe.KindNetConnect, probe.KindNetAccept, probe.KindNetBind, probe.KindNetListen, probe.KindNetTCPState:
		r.putProcessFromCache(attrs, ev)
		appendNet(lr, attrs, ev)
	default:
		if probe.IsPrivKind(ev.Kind) {
			r.putProcessFromCache(attrs, ev)
			appendPriv(lr, attrs, ev)
		}
	}
}

// putProcessFromCache adds the executable and command line of the event's
// process and its parent's, as the process cache knows them.
func (r *ebpfReceiver) putProcessFromCache(attrs pcommon.Map, ev *probe.Event) {
	if self, ok := r.procs.get(ev.Tgid); ok {
		attrs.PutStr(attrExecutablePath, self.exe)
		attrs.PutStr(attrExecutableName, path.Base(self.exe))
		attrs.PutStr(attrCommandLine, self.commandLine)
		putExecID(attrs, attrExecID, self.execID)
	}
	if parent, ok := r.procs.get(ev.Ppid); ok {
		attrs.PutStr(attrParentExecutablePath, parent.exe)
		attrs.PutStr(attrParentExecutableName, path.Base(parent.exe))
		attrs.PutStr(attrParentCommandLine, parent.commandLine)
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
