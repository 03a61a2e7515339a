package rules

import (
	"slices"
	"sort"
	"strings"
)

// Actions a rule may ask for in `action:`, beside its alert. The
// security_rules processor carries them out (or reports what it would have
// done, per its response mode).
const (
	ActionNone = ""     // alert only; `action: none` in a file, to undo an action with an override
	ActionKill = "kill" // SIGKILL the process that caused the event
)

// processEvents are the EventNames whose records name the process that caused
// them, by process.pid and k8ssec.process.start_time on the resource: the ebpf
// receiver's events. Not network.tcp_state: the kernel raises it in softirq,
// on behalf of whichever task happened to be running.
var processEvents = set(
	"process.exec", "process.exit", "process.fork",
	"file.open", "file.unlink", "file.rename", "file.chmod", "file.chown", "file.link", "file.symlink",
	"network.connect", "network.accept", "network.bind", "network.listen", "network.socket", "process.fd_dup",
	"privilege.setuid", "privilege.setgid", "privilege.capset", "privilege.escalation",
	"namespace.setns", "namespace.unshare", "namespace.mount",
	"kernel.module_load", "process.ptrace", "kernel.bpf_load", "process.memfd_create",
)

// NamesProcess reports whether records of the EventName name the process
// that caused them, which an action can then act on.
func NamesProcess(eventName string) bool { return processEvents[eventName] }

// ProcessEvents lists the EventNames NamesProcess accepts, sorted.
func ProcessEvents() []string {
	names := make([]string, 0, len(processEvents))
	for n := range processEvents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HasAction reports whether an enabled rule of the set asks for action.
func (s *Set) HasAction(action string) bool {
	return slices.ContainsFunc(s.Rules, func(r *Rule) bool { return r.Enabled && r.Action == action })
}

// action checks a rule's action: a known one, and for kill, one that can be
// carried out on every match.
func (c *compiler) action(spec *ruleSpec, r *Rule, entry string) string {
	at := spec.actionPos
	switch spec.Action {
	case "", "none":
		return ActionNone
	case ActionKill:
	default:
		c.fail(at, entry, "action %q is not one of %s, none", spec.Action, ActionKill)
		return ActionNone
	}
	var foreign []string
	for _, ev := range r.Events {
		if !NamesProcess(ev) {
			foreign = append(foreign, ev)
		}
	}
	if len(foreign) > 0 {
		c.fail(at, entry, "action: kill needs events that name the process that caused them (the ebpf receiver's, "+
			"with process.pid and k8ssec.process.start_time); %s do not", strings.Join(foreign, ", "))
	}
	if r.Throttle != nil {
		c.fail(at, entry, "action: kill acts on every match, and throttle suppresses all but the first of a period: "+
			"their processes would run on; drop one of them")
	}
	return ActionKill
}
