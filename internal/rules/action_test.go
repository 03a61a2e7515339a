package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const killRule = `
- rule: Miner
  events: [process.exec, network.connect]
  condition: process.executable.name == "xmrig"
  severity: critical
  output: miner %{process.pid}
  action: kill
- rule: Audit
  events: [k8s.audit]
  condition: user.name == "mallory"
  severity: high
  output: audit
`

func TestKillActionLoads(t *testing.T) {
	set := load(t, killRule)
	assert.Equal(t, ActionKill, set.Rules[0].Action)
	assert.Equal(t, ActionNone, set.Rules[1].Action)
	assert.True(t, set.HasAction(ActionKill))

	// An override turns it on for a pack's rule and off again, without copying it.
	set = load(t, killRule, "- override: Miner\n  action: none")
	assert.Equal(t, ActionNone, set.Rules[0].Action)
	assert.False(t, set.HasAction(ActionKill))
	set = load(t, "- rule: Shell\n  events: [process.exec]\n  condition: \"true\"\n  severity: low\n  output: o",
		"- override: Shell\n  action: kill")
	assert.Equal(t, ActionKill, set.Rules[0].Action)

	// A disabled rule kills nothing.
	set = load(t, killRule, "- override: Miner\n  enabled: false")
	assert.False(t, set.HasAction(ActionKill))
}

func TestBadActionsSayWhereAndWhy(t *testing.T) {
	const head = "- rule: X\n  severity: low\n  output: o\n  condition: \"true\"\n"
	for name, tc := range map[string]struct{ files []string }{
		// The line is the action's: that is what to change.
		`file1.yaml:6: rule "X": action "stop" is not one of kill, none`: {[]string{head + "  events: [process.exec]\n  action: stop"}},
		`file1.yaml:6: rule "X": action: kill needs events that name the process that caused them (the ebpf receiver's, with process.pid and k8ssec.process.start_time); k8s.audit do not`: {
			[]string{head + "  events: [k8s.audit]\n  action: kill"}},
		// Softirq: the task that ran is not the one the connection belongs to.
		`file1.yaml:6: rule "X": action: kill needs events that name the process that caused them (the ebpf receiver's, with process.pid and k8ssec.process.start_time); network.tcp_state, http.access do not`: {
			[]string{head + "  events: [process.exec, network.tcp_state, http.access]\n  action: kill"}},
		`file1.yaml:6: rule "X": action: kill acts on every match, and throttle suppresses all but the first`: {
			[]string{head + "  events: [process.exec]\n  action: kill\n  throttle: {by: [process.pid], period: 1m}"}},
		// Set by an override: its line.
		`file2.yaml:2: rule "X": action: kill needs events that name the process`: {
			[]string{head + "  events: [k8s.event]", "- override: X\n  action: kill"}},
		`file1.yaml:10: rule "S": action: kill needs events that name the process that caused them (the ebpf receiver's, with process.pid and k8ssec.process.start_time); k8s.audit do not`: {
			[]string{`- rule: S
  severity: high
  output: o
  sequence:
    by: [k8s.pod.name]
    within: 1m
    steps:
      - {name: exec, events: [k8s.audit], condition: "true"}
      - {name: shell, events: [process.exec], condition: "true"}
  action: kill`}},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Contains(t, loadErr(t, tc.files...), name)
		})
	}
}

// The ebpf receiver's events are the ones actions may act on; a receiver
// test holds its list and this one together.
func TestProcessEvents(t *testing.T) {
	require.Contains(t, ProcessEvents(), "process.exec")
	assert.NotContains(t, ProcessEvents(), "network.tcp_state")
	assert.False(t, NamesProcess("k8s.audit"))
}
