// Package response is the in-process channel between the security_rules
// processor, which decides that a process must die (a rule's action: kill),
// and the component that can name this node's processes: the ebpf receiver,
// which registers a Killer while it runs. A collector without one (a gateway,
// whose events come from other nodes) has no Killer, and the processor says
// the action was unavailable.
package response // import "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"

import "time"

// Target names one process: its pid and its start time, which tell it apart
// from a later process given the same pid.
type Target struct {
	Pid int
	// StartTime is the process's start, CLOCK_BOOTTIME ns (the ebpf
	// receiver's k8ssec.process.start_time).
	StartTime int64
}

// Result says what became of an action.
type Result string

// Results, as the alert's k8ssec.response.result says them.
const (
	Killed      Result = "killed"      // SIGKILL sent to the process
	DryRun      Result = "dry_run"     // the process was there and would have been killed
	PidReused   Result = "pid_reused"  // the pid names another process now: nothing sent
	Gone        Result = "gone"        // the process had exited already
	Unavailable Result = "unavailable" // no Killer in this collector: its pids are not this node's
	Error       Result = "error"       // the kill failed (Outcome.Err says why)
)

// Outcome is what a Killer did.
type Outcome struct {
	Result Result
	// At is when the signal was sent, or for DryRun when it would have been;
	// zero for the other results.
	At  time.Time
	Err error
}

// Killer kills a process of this node.
type Killer interface {
	// Kill sends SIGKILL to t unless dryRun, and only if t's pid still names
	// t's process.
	Kill(t Target, dryRun bool) Outcome
}
