package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const routingPack = `
- rule: Privileged pod
  events: [k8s.audit]
  condition: k8s.audit.verb == "create"
  severity: high
  output: x
- rule: Failed logins
  events: [k8s.audit]
  condition: http.response.status_code == 401
  threshold: {by: [client.address], count: 3, window: 1m}
  severity: medium
  output: x
- rule: Forbidden burst
  events: [k8s.audit]
  condition: http.response.status_code == 403
  threshold: {by: [user.name], count: 3, window: 1m}
  severity: medium
  output: x
- rule: Exec then shell
  severity: high
  output: x
  sequence:
    by: [k8s.namespace.name, k8s.pod.name]
    within: 1m
    steps:
      - {name: exec, events: [k8s.audit], condition: 'k8s.audit.object.subresource == "exec"'}
      - {name: shell, events: [process.exec], condition: 'process.executable.name == "sh"'}
`

func loadSelected(t *testing.T, sel func(*Rule) bool) *Set {
	t.Helper()
	set, err := Load([]Source{{Name: "routing.yaml", Data: []byte(routingPack)}}, Options{Select: sel})
	require.NoError(t, err)
	return set
}

func TestRuleKeyFamily(t *testing.T) {
	set := loadSelected(t, nil)
	got := map[string]string{}
	for _, r := range set.Rules {
		got[r.Name] = r.KeyFamily()
		assert.Equal(t, r.KeyFamily() != "", r.Stateful(), r.Name)
	}
	assert.Equal(t, map[string]string{
		"Privileged pod":  "",
		"Failed logins":   "client.address",
		"Forbidden burst": "user.name",
		"Exec then shell": "k8s.namespace.name,k8s.pod.name",
	}, got)
}

// Select splits one pack between the tiers: the unselected rules never run.
func TestSelectLeavesOtherRulesOut(t *testing.T) {
	create := event("k8s.audit", 0, map[string]any{"k8s.audit.verb": "create", "http.response.status_code": 401, "client.address": "10.0.0.1"})

	stateless := NewEngine(loadSelected(t, func(r *Rule) bool { return !r.Stateful() }), StateConfig{})
	for range 3 {
		assert.Equal(t, []string{"Privileged pod"}, names(stateless.Evaluate(create, nil)))
	}
	stateful := NewEngine(loadSelected(t, (*Rule).Stateful), StateConfig{})
	assert.Empty(t, names(stateful.Evaluate(create, nil)))
	assert.Empty(t, names(stateful.Evaluate(create, nil)))
	assert.Equal(t, []string{"Failed logins"}, names(stateful.Evaluate(create, nil)), "the third 401 crosses the threshold")
}

func TestKeyedNamesTheStatefulRulesAnEventFeeds(t *testing.T) {
	e := NewEngine(loadSelected(t, nil), StateConfig{})
	ruleNames := func(rs []*Rule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	exec401 := event("k8s.audit", 0, map[string]any{"k8s.audit.object.subresource": "exec", "http.response.status_code": 401,
		"client.address": "10.0.0.1", "k8s.namespace.name": "shop", "k8s.pod.name": "web"})
	assert.Equal(t, []string{"Failed logins", "Exec then shell"}, ruleNames(e.Keyed(exec401, nil)))
	assert.Empty(t, e.Keyed(event("k8s.audit", 0, map[string]any{"k8s.audit.verb": "create"}), nil), "stateless rules are not keyed")
	assert.Equal(t, []string{"Exec then shell"}, ruleNames(e.Keyed(event("process.exec", 0, map[string]any{"process.executable.name": "sh"}), nil)))
	assert.Empty(t, e.Keyed(event("process.exec", 0, map[string]any{"process.executable.name": "ls"}), nil))
	// Keyed counts nothing: three calls do not cross the threshold.
	for range 3 {
		e.Keyed(exec401, nil)
	}
	assert.Empty(t, names(e.Evaluate(exec401, nil)))
}

// A copy of an event routed for one key family feeds only that family's rules.
func TestKeyByLimitsAnEventToItsFamily(t *testing.T) {
	e := NewEngine(loadSelected(t, nil), StateConfig{})
	ev := event("k8s.audit", 0, map[string]any{"http.response.status_code": 401, "client.address": "10.0.0.1", "k8s.audit.verb": "create"})
	ev.KeyBy = "user.name"
	for range 5 {
		assert.Empty(t, names(e.Evaluate(ev, nil)), "neither the stateless rule nor another family's threshold")
	}
	ev.KeyBy = "client.address"
	e.Evaluate(ev, nil)
	e.Evaluate(ev, nil)
	assert.Equal(t, []string{"Failed logins"}, names(e.Evaluate(ev, nil)))

	shell := event("process.exec", 0, map[string]any{"process.executable.name": "sh", "k8s.namespace.name": "shop", "k8s.pod.name": "web"})
	exec := event("k8s.audit", 0, map[string]any{"k8s.audit.object.subresource": "exec", "k8s.namespace.name": "shop", "k8s.pod.name": "web"})
	exec.KeyBy, shell.KeyBy = "client.address", "client.address"
	e.Evaluate(exec, nil)
	assert.Empty(t, names(e.Evaluate(shell, nil)), "a copy for another family starts no sequence")
	exec.KeyBy, shell.KeyBy = "k8s.namespace.name,k8s.pod.name", "k8s.namespace.name,k8s.pod.name"
	e.Evaluate(exec, nil)
	assert.Equal(t, []string{"Exec then shell"}, names(e.Evaluate(shell, nil)))
}
