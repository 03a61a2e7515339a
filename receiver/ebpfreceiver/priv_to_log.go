package ebpfreceiver

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// Privilege and isolation attributes (no semantic convention covers them).
const (
	attrSyscallName       = "k8ssec.syscall.name"
	attrOldRealID         = "k8ssec.privilege.old.real_id"
	attrOldEffectiveID    = "k8ssec.privilege.old.effective_id"
	attrNewRealID         = "k8ssec.privilege.new.real_id"
	attrNewEffectiveID    = "k8ssec.privilege.new.effective_id"
	attrNewSavedID        = "k8ssec.privilege.new.saved_id"
	attrCapEffective      = "k8ssec.capabilities.effective"
	attrCapPermitted      = "k8ssec.capabilities.permitted"
	attrCapInheritable    = "k8ssec.capabilities.inheritable"
	attrCapTargetPid      = "k8ssec.capabilities.target_pid"
	attrNamespaceFd       = "k8ssec.namespace.fd"
	attrNamespaceFlags    = "k8ssec.namespace.flags"
	attrNamespaceTypes    = "k8ssec.namespace.types"
	attrMountSource       = "k8ssec.mount.source"
	attrMountTarget       = "k8ssec.mount.target"
	attrMountFSType       = "k8ssec.mount.fstype"
	attrMountFlags        = "k8ssec.mount.flags"
	attrModuleFd          = "k8ssec.module.fd"
	attrModuleSize        = "k8ssec.module.size"
	attrModuleFlags       = "k8ssec.module.flags"
	attrPtraceRequest     = "k8ssec.ptrace.request"
	attrPtraceTargetPid   = "k8ssec.ptrace.target_pid"
	attrBPFProgType       = "k8ssec.bpf.prog_type"
	attrBPFProgName       = "k8ssec.bpf.prog_name"
	attrBPFInsnCount      = "k8ssec.bpf.insn_count"
	attrMemfdName         = "k8ssec.memfd.name"
	attrMemfdFlags        = "k8ssec.memfd.flags"
	unchangedID           = uint64(^uint32(0)) // (uid_t)-1
	nsTimeFlag            = 0x80               // CLONE_NEWTIME: unshare and clone3 only
	ptraceSeize           = 0x4206
	namespaceFlagsOfClone = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
)

var namespaceNames = []struct {
	flag uint64
	name string
}{
	{unix.CLONE_NEWNS, "mnt"}, {unix.CLONE_NEWCGROUP, "cgroup"}, {unix.CLONE_NEWUTS, "uts"}, {unix.CLONE_NEWIPC, "ipc"},
	{unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWPID, "pid"}, {unix.CLONE_NEWNET, "net"}, {nsTimeFlag, "time"},
}

// putNamespaceTypes lists the namespaces flags name (clone's low byte is
// its exit signal, not CLONE_NEWTIME).
func putNamespaceTypes(attrs pcommon.Map, flags uint64, op probe.Op) {
	if op == probe.OpClone {
		flags &= namespaceFlagsOfClone
	}
	s := attrs.PutEmptySlice(attrNamespaceTypes)
	for _, n := range namespaceNames {
		if flags&n.flag != 0 {
			s.AppendEmpty().SetStr(n.name)
		}
	}
}

func putID(attrs pcommon.Map, key string, id uint64) {
	if uint32(id) != uint32(unchangedID) {
		attrs.PutInt(key, int64(uint32(id)))
	}
}

// appendPriv maps a privilege or isolation record; the process header is
// already there, with the ids from before the call.
func appendPriv(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(ev.Kind.String())
	attrs.PutStr(attrSyscallName, ev.Op.String())
	attrs.PutInt(attrSyscallResult, ev.Result)
	a := &ev.SysArgs
	switch ev.Kind {
	case probe.KindPrivSetuid, probe.KindPrivSetgid:
		oldReal, oldEff := ev.Uid, ev.Euid
		if ev.Kind == probe.KindPrivSetgid {
			oldReal, oldEff = ev.Gid, ev.Egid
		}
		attrs.PutInt(attrOldRealID, int64(oldReal))
		attrs.PutInt(attrOldEffectiveID, int64(oldEff))
		switch ev.Op {
		case probe.OpSetuid, probe.OpSetgid:
			// With the capability (approximated by euid 0), all three ids change.
			putID(attrs, attrNewEffectiveID, a[0])
			if ev.Euid == 0 {
				putID(attrs, attrNewRealID, a[0])
				putID(attrs, attrNewSavedID, a[0])
			}
		case probe.OpSetreuid, probe.OpSetregid:
			putID(attrs, attrNewRealID, a[0])
			putID(attrs, attrNewEffectiveID, a[1])
		default:
			putID(attrs, attrNewRealID, a[0])
			putID(attrs, attrNewEffectiveID, a[1])
			putID(attrs, attrNewSavedID, a[2])
		}
	case probe.KindPrivCapset:
		attrs.PutInt(attrCapEffective, int64(a[0]))
		attrs.PutInt(attrCapPermitted, int64(a[1]))
		attrs.PutInt(attrCapInheritable, int64(a[2]))
		if a[3] != 0 {
			attrs.PutInt(attrCapTargetPid, int64(int32(a[3])))
		}
	case probe.KindNsSetns:
		attrs.PutInt(attrNamespaceFd, int64(int32(a[0])))
		attrs.PutInt(attrNamespaceFlags, int64(a[1]))
		putNamespaceTypes(attrs, a[1], ev.Op)
	case probe.KindNsUnshare:
		attrs.PutInt(attrNamespaceFlags, int64(a[0]))
		putNamespaceTypes(attrs, a[0], ev.Op)
	case probe.KindNsMount:
		attrs.PutStr(attrMountSource, string(ev.Str2))
		attrs.PutStr(attrMountTarget, string(ev.Str1))
		attrs.PutStr(attrMountFSType, string(ev.Name))
		attrs.PutInt(attrMountFlags, int64(a[3]))
		lr.Body().SetStr(string(ev.Str1))
	case probe.KindModuleLoad:
		if ev.Op == probe.OpFinitModule {
			attrs.PutInt(attrModuleFd, int64(int32(a[0])))
			attrs.PutInt(attrModuleFlags, int64(a[2]))
		} else {
			attrs.PutInt(attrModuleSize, int64(a[1]))
		}
	case probe.KindPtrace:
		if a[0] == ptraceSeize {
			attrs.PutStr(attrPtraceRequest, "PTRACE_SEIZE")
		} else {
			attrs.PutStr(attrPtraceRequest, "PTRACE_ATTACH")
		}
		attrs.PutInt(attrPtraceTargetPid, int64(int32(a[1])))
	case probe.KindBPFLoad:
		attrs.PutInt(attrBPFProgType, int64(a[1]))
		attrs.PutInt(attrBPFInsnCount, int64(a[2]))
		attrs.PutStr(attrBPFProgName, string(ev.Name))
	case probe.KindMemfdCreate:
		attrs.PutStr(attrMemfdName, string(ev.Str1))
		attrs.PutInt(attrMemfdFlags, int64(a[1]))
		lr.Body().SetStr(string(ev.Str1))
	}
}

// Escalation attributes (privilege.escalation); the old and new uids use the
// privilege.setuid names.
const (
	attrOldGroupID          = "k8ssec.privilege.old.group_id"
	attrNewGroupID          = "k8ssec.privilege.new.group_id"
	attrSyscallID           = "k8ssec.syscall.id"     // the number of the syscall the task was in
	attrSyscallCompat       = "k8ssec.syscall.compat" // a 32-bit (ia32) syscall: k8ssec.syscall.id is of that table
	attrEscalationExec      = "k8ssec.privilege.exec" // during an execve whose executable is not set-uid to the new euid
	enforcementRuleEscalate = "kill_on_escalation"
)

// appendEscalation maps a privilege.escalation record: the header has the
// old ids, the record the new ones.
func appendEscalation(lr plog.LogRecord, attrs pcommon.Map, ev *probe.Event) {
	lr.SetEventName(ev.Kind.String())
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	attrs.PutStr(attrHook, ev.Hook.String())
	attrs.PutInt(attrOldRealID, int64(ev.Uid))
	attrs.PutInt(attrOldEffectiveID, int64(ev.Euid))
	attrs.PutInt(attrOldGroupID, int64(ev.Gid))
	attrs.PutInt(attrNewRealID, int64(ev.NewUid))
	attrs.PutInt(attrNewEffectiveID, int64(ev.NewEuid))
	attrs.PutInt(attrNewGroupID, int64(ev.NewGid))
	if ev.Syscall != probe.NoSyscall {
		attrs.PutInt(attrSyscallID, int64(ev.Syscall))
	}
	if ev.Flags&probe.EscalationCompat != 0 {
		attrs.PutBool(attrSyscallCompat, true)
	}
	if ev.Flags&probe.EscalationExec != 0 {
		attrs.PutBool(attrEscalationExec, true)
	}
	if ev.Flags&probe.EscalationKilled != 0 {
		attrs.PutStr(attrEnforcementAction, enforcementSigkill)
		attrs.PutStr(attrEnforcementRule, enforcementRuleEscalate)
	}
	lr.Body().SetStr("uid " + strconv.FormatUint(uint64(ev.Uid), 10) + "/" + strconv.FormatUint(uint64(ev.Euid), 10) +
		" -> " + strconv.FormatUint(uint64(ev.NewUid), 10) + "/" + strconv.FormatUint(uint64(ev.NewEuid), 10))
}
