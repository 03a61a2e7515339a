package ebpfreceiver

import (
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response/pidfd"
)

// initialPidNamespace is the inode of the kernel's first PID namespace
// (PROC_PID_INIT_INO), the one whose pids the BPF programs report.
const initialPidNamespace = 0xEFFFFFFC

// registerKiller lets rules' action: kill in this collector act on the
// events' processes, when this collector's pids are the kernel's: in the
// node's PID namespace (hostPID in the DaemonSet). Elsewhere a pid of an
// event names another process or none, and the actions are unavailable.
func (r *ebpfReceiver) registerKiller() {
	if !inInitialPidNamespace() {
		r.set.Logger.Warn("ebpf receiver: not in the node's PID namespace (run with hostPID): rules' action: kill cannot name the events' processes and reports unavailable")
		return
	}
	r.unregister = response.Register(pidfd.Killer{})
}

func inInitialPidNamespace() bool {
	var st unix.Stat_t
	return unix.Stat("/proc/self/ns/pid", &st) == nil && st.Ino == initialPidNamespace
}
