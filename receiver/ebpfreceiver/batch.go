package ebpfreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadata"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// processKey is what makes two events the same process for a batch: the
// process, its credentials and namespaces as the kernel reported them, and
// the exec the process cache knew it by (a new exec is a new *procInfo).
type processKey struct {
	tgid, ppid           uint32
	uid, euid, gid, egid uint32
	mntNs, pidNs         uint32
	cgroupID             uint64
	comm                 [16]byte
	self, parent         *procInfo
}

func keyOf(ev *probe.Event, self, parent *procInfo) processKey {
	h := &ev.Header
	return processKey{
		tgid: h.Tgid, ppid: h.Ppid,
		uid: h.Uid, euid: h.Euid, gid: h.Gid, egid: h.Egid,
		mntNs: h.MntNs, pidNs: h.PidNs, cgroupID: h.CgroupID,
		comm: h.Comm, self: self, parent: parent,
	}
}

// eventBatch groups a batch's records by process, in runs: consecutive
// events of one process share a resource, which carries once what they have
// in common: the process and its parent (process.* are resource attributes
// in OpenTelemetry's semantic conventions) and its container and pod. A storm
// from one process then costs each record its own attributes only. An event
// of another process starts a new resource, even for a process seen earlier
// in the batch, so that the records stay in the order the kernel gave them:
// sequence rules depend on it.
type eventBatch struct {
	logs    plog.Logs
	last    processKey // the process of the current run
	lastLrs plog.LogRecordSlice
}

func newEventBatch() *eventBatch { return &eventBatch{logs: plog.NewLogs()} }

// recordsFor returns the records of k's run. For a new run it also returns
// its resource's attributes, empty, for the caller to fill.
func (b *eventBatch) recordsFor(k processKey) (lrs plog.LogRecordSlice, res pcommon.Map, isNew bool) {
	if k == b.last && b.lastLrs != (plog.LogRecordSlice{}) {
		return b.lastLrs, pcommon.Map{}, false
	}
	rl := b.logs.ResourceLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	b.last, b.lastLrs = k, sl.LogRecords()
	return b.lastLrs, rl.Resource().Attributes(), true
}
