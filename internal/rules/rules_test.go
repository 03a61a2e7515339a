package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func load(t *testing.T, files ...string) *Set {
	t.Helper()
	var srcs []Source
	for i, f := range files {
		srcs = append(srcs, Source{Name: fmt.Sprintf("file%d.yaml", i+1), Data: []byte(f)})
	}
	set, err := Load(srcs, Options{})
	require.NoError(t, err)
	return set
}

func loadErr(t *testing.T, files ...string) string {
	t.Helper()
	var srcs []Source
	for i, f := range files {
		srcs = append(srcs, Source{Name: fmt.Sprintf("file%d.yaml", i+1), Data: []byte(f)})
	}
	_, err := Load(srcs, Options{})
	require.Error(t, err)
	return err.Error()
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func event(name string, at time.Duration, attrs map[string]any) *Event {
	ev := &Event{Name: name, Attrs: pcommon.NewMap(), Resource: pcommon.NewMap(), Time: t0.Add(at)}
	if err := ev.Attrs.FromRaw(attrs); err != nil {
		panic(err)
	}
	return ev
}

func names(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Rule.Name)
	}
	return out
}

const basePack = `
- ruleset: base
  version: "2.1.0"
- list: shells
  items: [bash, sh]
- list: admin_namespaces
  items: [kube-system]
- macro: pod_create
  condition: k8s.audit.verb == "create" && k8s.audit.object.resource == "pods"
- macro: privileged_pod
  condition: >
    pod_create && k8s.audit.request_object.?spec.?containers.orValue([])
      .exists(c, c.?securityContext.?privileged.orValue(false))
- rule: Privileged pod
  id: T-1
  description: privileged container
  events: [k8s.audit]
  condition: privileged_pod
  exceptions:
    - name: admin namespaces
      field: k8s.namespace.name
      values: [kube-system]
    - name: operator
      condition: user.name == "system:serviceaccount:ops:operator"
  severity: high
  category: privilege-escalation
  tags: [k8s, mitre.TA0004, mitre.T1611]
  reference: https://example.com/priv
  output: Privileged pod %{k8s.namespace.name}/%{k8s.audit.object.name} by %{user.name} (%{k8s.audit.verb})
- rule: Shell
  events: [process.exec]
  condition: process.executable.name in shells
  severity: medium
  output: shell %{process.executable.name} in %{k8s.pod.name}
`

func privilegedPod(ns, user string) map[string]any {
	return map[string]any{
		"k8s.audit.id": "a-1", "k8s.audit.verb": "create", "k8s.audit.object.resource": "pods",
		"k8s.audit.object.name": "web", "k8s.namespace.name": ns, "user.name": user,
		"k8s.audit.request_object": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "a"},
			map[string]any{"name": "b", "securityContext": map[string]any{"privileged": true}},
		}}},
	}
}

func TestRuleMatchesThroughMacrosListsAndExceptions(t *testing.T) {
	e := NewEngine(load(t, basePack), StateConfig{})

	assert.Equal(t, []string{"Privileged pod"}, names(e.Evaluate(event("k8s.audit", 0, privilegedPod("default", "alice")), nil)))
	assert.Empty(t, e.Evaluate(event("k8s.audit", 0, privilegedPod("kube-system", "alice")), nil), "field exception")
	assert.Empty(t, e.Evaluate(event("k8s.audit", 0, privilegedPod("default", "system:serviceaccount:ops:operator")), nil), "condition exception")

	plain := privilegedPod("default", "alice")
	plain["k8s.audit.request_object"] = map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "a"}}}}
	assert.Empty(t, e.Evaluate(event("k8s.audit", 0, plain), nil), "no privileged container")
	assert.Empty(t, e.Evaluate(event("k8s.audit", 0, map[string]any{"k8s.audit.verb": "create"}), nil), "absent attributes read as zero values, no error")
	assert.Empty(t, e.Evaluate(event("process.exec", 0, privilegedPod("default", "alice")), nil), "rules apply to their events only")

	assert.Equal(t, []string{"Shell"}, names(e.Evaluate(event("process.exec", 0, map[string]any{"process.executable.name": "bash"}), nil)))
	ev := event("process.exec", 0, nil)
	ev.Resource.PutStr("process.executable.name", "sh")
	assert.Equal(t, []string{"Shell"}, names(e.Evaluate(ev, nil)), "resource attributes are read too")
	assert.Equal(t, int64(0), e.Stats().Errors.Load())
}

func TestAlertRecord(t *testing.T) {
	e := NewEngine(load(t, basePack), StateConfig{})
	ev := event("k8s.audit", time.Second, privilegedPod("default", "alice"))
	ms := e.Evaluate(ev, nil)
	require.Len(t, ms, 1)
	lr := plog.NewLogRecord()
	now := t0.Add(time.Minute)
	ms[0].WriteAlert(ev, lr, now)

	assert.Equal(t, "security.alert", lr.EventName())
	assert.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
	assert.Equal(t, "high", lr.SeverityText())
	assert.Equal(t, t0.Add(time.Second), lr.Timestamp().AsTime())
	assert.Equal(t, now, lr.ObservedTimestamp().AsTime())
	assert.Equal(t, "Privileged pod default/web by alice (create)", lr.Body().Str())
	got := lr.Attributes().AsRaw()
	assert.Equal(t, "a-1", got["k8s.audit.id"], "the evidence's audit ID is carried")
	assert.NotContains(t, got, "k8s.audit.request_object", "maps are not copied")
	for k, v := range map[string]any{
		"security_rule.name": "Privileged pod", "security_rule.uuid": "T-1", "security_rule.category": "privilege-escalation",
		"security_rule.description": "privileged container", "security_rule.reference": "https://example.com/priv",
		"security_rule.ruleset.name": "base", "security_rule.version": "2.1.0", "security_rule.event.name": "k8s.audit",
		"security_rule.tags": []any{"k8s", "mitre.TA0004", "mitre.T1611"}, "security_rule.mitre.tactics": []any{"TA0004"},
		"security_rule.mitre.techniques": []any{"T1611"}, "security_rule.count": int64(1),
	} {
		assert.Equal(t, v, got[k], k)
	}
}

func TestBadRulesSayWhereAndWhy(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"yaml":          {"- rule: [unclosed", "file1.yaml: not valid YAML: yaml: line 1: did not find expected ',' or ']'"},
		"not a list":    {"rule: x", "file1.yaml:1: a rules file is a list of entries (rule, list, macro, override)"},
		"unknown entry": {"- rul: x", `file1.yaml:1: unknown entry "rul": the first key is rule, list, macro, override or ruleset`},
		"unknown key":   {"- rule: X\n  events: [k8s.audit]\n  condtion: true", `file1.yaml:3: rule "X": unknown key "condtion"`},
		"does not parse": {"- rule: X\n  events: [k8s.audit]\n  severity: low\n  output: o\n  condition: user.name == ",
			"file1.yaml:5: rule \"X\": condition does not compile:\nERROR: <input>:1:14: Syntax error"},
		"field of a string": {"- rule: X\n  events: [k8s.audit]\n  severity: low\n  output: o\n  condition: user.name.first == \"a\"",
			"file1.yaml:5: rule \"X\": condition does not compile:\nERROR: <input>:1:11: type 'string' does not support field selection"},
		"has on a record field": {"- rule: X\n  events: [k8s.audit]\n  severity: low\n  output: o\n  condition: has(event.body)",
			`file1.yaml:5: rule "X": condition: has(event.body): the record's own fields are always there; has() tests attributes`},
		"not a bool": {"- rule: X\n  events: [k8s.audit]\n  severity: low\n  output: o\n  condition: user.name",
			`file1.yaml:5: rule "X": condition is a string, want a bool`},
		"severity": {"- rule: X\n  events: [k8s.audit]\n  severity: urgent\n  output: o\n  condition: \"true\"",
			`file1.yaml:1: rule "X": severity "urgent" is not one of info, low, medium, high, critical`},
		"no events": {"- rule: X\n  severity: low\n  output: o\n  condition: \"true\"",
			`file1.yaml:1: rule "X": events is required: the EventNames the rule applies to (e.g. [k8s.audit])`},
		"duplicate": {"- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"\n- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"",
			`file1.yaml:6: rule "X": a rule of this name is already defined at file1.yaml:1 (use override: to change it)`},
		"macro cycle": {"- macro: a\n  condition: b\n- macro: b\n  condition: a",
			`macros use each other in a cycle: a -> b -> a`},
		"override unknown":    {"- override: Nope\n  enabled: false", `file1.yaml:1: override "Nope": no rule of this name is loaded before it`},
		"append unknown list": {"- list: l\n  append: true\n  items: [a]", `file1.yaml:1: list "l": append to a list that no earlier file defines`},
		"dotted list name":    {"- list: a.b\n  items: [x]", `file1.yaml:1: list "a.b": a list name is an identifier`},
		"covers anchor": {"- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"\n  covers: [\"falko:Terminal shell in container\"]",
			`file1.yaml:1: rule "X": covers: "falko:Terminal shell in container": unknown anchor "falko" (one of falco, tracee, sigma, crs)`},
		"covers shape": {"- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"\n  covers: [TRC-1010]",
			`file1.yaml:1: rule "X": covers: "TRC-1010": want <anchor>:<rule>`},
		"covers partly only": {"- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"\n  covers: [\"tracee: (partly)\"]",
			`file1.yaml:1: rule "X": covers: "tracee: (partly)": want <anchor>:<rule>[ (partly)]`},
		"threshold": {"- rule: X\n  events: [a]\n  severity: low\n  output: o\n  condition: \"true\"\n  threshold: {by: [user.name], count: 1, window: 1m}",
			`file1.yaml:1: rule "X": threshold needs count of at least 2 and a positive window`},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Contains(t, loadErr(t, tc.file), tc.want)
		})
	}
}

func TestEveryErrorOfEveryFileIsReported(t *testing.T) {
	msg := loadErr(t,
		"- rule: A\n  events: [a]\n  severity: bad\n  output: o\n  condition: \"true\"",
		"- rule: B\n  events: [a]\n  severity: low\n  output: o\n  condition: nope == ")
	assert.Contains(t, msg, `file1.yaml:1: rule "A": severity "bad"`)
	assert.Contains(t, msg, `file2.yaml:5: rule "B": condition does not compile`)
}

func TestOverridesFromAUserFile(t *testing.T) {
	user := `
- override: Privileged pod
  severity: critical
  exceptions:
    - name: ci
      field: user.name
      values: [ci-bot]
- override: Shell
  enabled: false
- list: shells
  append: true
  items: [zsh]
`
	set := load(t, basePack, user)
	e := NewEngine(set, StateConfig{})
	ms := e.Evaluate(event("k8s.audit", 0, privilegedPod("default", "alice")), nil)
	require.Len(t, ms, 1)
	assert.Equal(t, SeverityCritical, ms[0].Rule.Severity)
	assert.Empty(t, e.Evaluate(event("k8s.audit", 0, privilegedPod("default", "ci-bot")), nil), "appended exception")
	assert.Empty(t, e.Evaluate(event("process.exec", 0, map[string]any{"process.executable.name": "bash"}), nil), "disabled rule")

	// The appended list is seen by a rule of a later file.
	set = load(t, basePack, user, "- rule: Z\n  events: [process.exec]\n  severity: low\n  output: z\n  condition: process.executable.name in shells")
	ms = NewEngine(set, StateConfig{}).Evaluate(event("process.exec", 0, map[string]any{"process.executable.name": "zsh"}), nil)
	assert.Equal(t, []string{"Z"}, names(ms))
}

func TestHelpers(t *testing.T) {
	pack := `
- list: private
  items: [10.0.0.0/8, "fd00::/8"]
- rule: H
  events: [t]
  severity: low
  output: o
  condition: >
    glob(file.path, "/etc/*") && in_cidr(client.address, private) && icontains(user_agent.original, "SQLMAP") &&
    url_decode(url_decode(url.path)).contains("../") && starts_with_any(user.name, ["sys", "adm"]) &&
    ends_with_any(process.executable.name, [".sh"]) && icontains_any(url.query, ["UNION SELECT"]) &&
    glob_any(process.executable.path, ["/tmp/*", "/dev/shm/*"])
`
	e := NewEngine(load(t, pack), StateConfig{})
	good := map[string]any{
		"file.path": "/etc/shadow", "client.address": "10.1.2.3", "user_agent.original": "sqlmap/1.7",
		"url.path": "/a/%252e%252e%252fetc", "user.name": "admin", "process.executable.name": "x.sh",
		"url.query": "id=1 union select 1", "process.executable.path": "/dev/shm/x",
	}
	assert.Len(t, e.Evaluate(event("t", 0, good), nil), 1)
	for k, bad := range map[string]any{
		"file.path": "/etc/ssl/certs/x", "client.address": "8.8.8.8", "user_agent.original": "curl",
		"url.path": "/a/%2e%2e", "user.name": "bob", "process.executable.name": "x.py",
		"url.query": "id=1", "process.executable.path": "/usr/bin/x",
	} {
		ev := map[string]any{}
		for kk, vv := range good {
			ev[kk] = vv
		}
		ev[k] = bad
		assert.Empty(t, e.Evaluate(event("t", 0, ev), nil), k)
	}
	assert.True(t, inCIDR("fd00::1", "fd00::/8"))
	assert.True(t, inCIDR("::ffff:10.0.0.1", "10.0.0.0/8"), "IPv4-mapped IPv6")
	assert.Equal(t, "%zz/a b", urlDecode("%zz/a%20b"), "a bad escape is kept, the rest decoded")
}

func TestCostLimitStopsARunawayCondition(t *testing.T) {
	pack := `
- rule: Slow
  events: [t]
  severity: low
  output: o
  condition: process.command_args.all(a, process.command_args.all(b, process.command_args.all(c, a + b + c != "x")))
`
	set, err := Load([]Source{{Name: "f", Data: []byte(pack)}}, Options{CostLimit: 10000})
	require.NoError(t, err)
	e := NewEngine(set, StateConfig{})
	args := make([]any, 100)
	for i := range args {
		args[i] = fmt.Sprint(i)
	}
	assert.Empty(t, e.Evaluate(event("t", 0, map[string]any{"process.command_args": args}), nil))
	assert.Equal(t, int64(1), e.Stats().Errors.Load(), "the evaluation error is counted, not fatal")
	assert.Len(t, e.Evaluate(event("t", 0, map[string]any{"process.command_args": []any{"a"}}), nil), 1, "a cheap event still matches")
}

const statefulPack = `
- rule: Burst
  events: [k8s.audit]
  condition: k8s.audit.object.resource == "secrets"
  threshold: {by: [user.name], count: 3, window: 1m}
  severity: medium
  output: secret burst by %{user.name}
- rule: Noisy
  events: [http.access]
  condition: http.response.status_code == 404
  throttle: {by: [client.address], period: 5m}
  severity: low
  output: 404 from %{client.address}
- rule: Exec then shell then connect
  severity: critical
  output: chain in %{k8s.pod.name} after %{k8s.audit.id} to %{server.address}, %{user.name}
  sequence:
    by: [k8s.namespace.name, k8s.pod.name]
    within: 5m
    steps:
      - name: exec
        events: [k8s.audit]
        condition: k8s.audit.object.subresource == "exec"
      - name: shell
        events: [process.exec]
        condition: process.executable.name == "sh"
      - name: connect
        events: [network.connect]
        condition: server.port == 4444
`

func TestThreshold(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{})
	read := func(at time.Duration, user string) []Match {
		return e.Evaluate(event("k8s.audit", at, map[string]any{"k8s.audit.object.resource": "secrets", "user.name": user}), nil)
	}
	assert.Empty(t, read(0, "alice"))
	assert.Empty(t, read(10*time.Second, "alice"))
	assert.Empty(t, read(20*time.Second, "bob"), "another key counts apart")
	ms := read(30*time.Second, "alice")
	require.Len(t, ms, 1)
	assert.Equal(t, 3, ms[0].Count)
	assert.Equal(t, []string{"alice"}, ms[0].Key)
	assert.Empty(t, read(40*time.Second, "alice"), "counting starts again after an alert")

	assert.Empty(t, read(10*time.Minute, "carol"))
	assert.Empty(t, read(11*time.Minute, "carol"))
	assert.Empty(t, read(12*time.Minute+time.Second, "carol"), "the first match left the window")
}

func TestThrottle(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{})
	hit := func(at time.Duration) []Match {
		return e.Evaluate(event("http.access", at, map[string]any{"http.response.status_code": 404, "client.address": "1.2.3.4"}), nil)
	}
	first := hit(0)
	require.Len(t, first, 1)
	assert.False(t, first[0].Summary)
	for i := 1; i <= 4; i++ {
		assert.Empty(t, hit(time.Duration(i)*time.Minute), "throttled")
	}
	assert.Empty(t, e.Flush(t0.Add(4*time.Minute)), "the period is not over")
	sums := e.Flush(t0.Add(5 * time.Minute))
	require.Len(t, sums, 1)
	assert.True(t, sums[0].Summary)
	assert.Equal(t, 4, sums[0].Count)

	lr := plog.NewLogRecord()
	sums[0].WriteAlert(nil, lr, t0.Add(5*time.Minute))
	assert.Equal(t, `4 more matches of "Noisy" were throttled`, lr.Body().Str())
	addr, _ := lr.Attributes().Get("client.address")
	assert.Equal(t, "1.2.3.4", addr.Str(), "a summary names its key")

	assert.Len(t, hit(6*time.Minute), 1, "a new period alerts again")
	hit(7 * time.Minute)
	ms := hit(12 * time.Minute)
	require.Len(t, ms, 2, "a match after the period brings the summary of the last one")
	assert.True(t, ms[0].Summary)
	assert.Equal(t, 1, ms[0].Count)
}

// Drain reports every throttling period, ended or not, and leaves nothing
// to throttle: a match the replaced engine still meets is alerted on.
func TestThrottleDrain(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{})
	hit := func(at time.Duration, client string) []Match {
		return e.Evaluate(event("http.access", at, map[string]any{"http.response.status_code": 404, "client.address": client}), nil)
	}
	for i := range 3 {
		hit(time.Duration(i)*time.Second, "1.2.3.4")
	}
	hit(0, "5.6.7.8") // alerted, nothing suppressed: no summary
	sums := e.Drain()
	require.Len(t, sums, 1)
	assert.True(t, sums[0].Summary)
	assert.Equal(t, 2, sums[0].Count)
	assert.Equal(t, []string{"1.2.3.4"}, sums[0].Key)
	assert.Empty(t, e.Drain(), "drained once")

	ms := hit(4*time.Second, "1.2.3.4")
	require.Len(t, ms, 1, "after Drain a match is not suppressed")
	assert.False(t, ms[0].Summary)
	assert.Empty(t, e.Flush(t0.Add(time.Hour)))
}

func TestSequenceAcrossSources(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{})
	pod := func(at time.Duration, name string, attrs map[string]any) *Event {
		ev := event(name, at, attrs)
		ev.Resource.PutStr("k8s.namespace.name", "prod")
		ev.Resource.PutStr("k8s.pod.name", "web")
		return ev
	}
	exec := func(at time.Duration) *Event {
		return event("k8s.audit", at, map[string]any{"k8s.audit.object.subresource": "exec", "k8s.namespace.name": "prod", "k8s.pod.name": "web", "k8s.audit.id": "x1"})
	}
	shell := func(at time.Duration) *Event {
		ev := pod(at, "process.exec", map[string]any{"process.command_args": []any{"sh"}})
		ev.Resource.PutInt("process.pid", 42) // the ebpf receiver puts the process on the resource
		ev.Resource.PutStr("process.executable.name", "sh")
		return ev
	}
	connect := func(at time.Duration) *Event {
		return pod(at, "network.connect", map[string]any{"server.port": 4444, "server.address": "203.0.113.9"})
	}

	assert.Empty(t, e.Evaluate(shell(0), nil), "a shell before any exec starts nothing")
	assert.Empty(t, e.Evaluate(exec(time.Second), nil))
	assert.Empty(t, e.Evaluate(connect(2*time.Second), nil), "out of order")
	assert.Empty(t, e.Evaluate(shell(3*time.Second), nil))
	ms := e.Evaluate(connect(4*time.Second), nil)
	require.Len(t, ms, 1)
	require.Len(t, ms[0].Evidence, 3)
	assert.Equal(t, []string{"exec", "shell", "connect"}, []string{ms[0].Evidence[0].Step, ms[0].Evidence[1].Step, ms[0].Evidence[2].Step})
	assert.Equal(t, []string{"prod", "web"}, ms[0].Key)

	lr := plog.NewLogRecord()
	ms[0].WriteAlert(connect(4*time.Second), lr, t0)
	ev, _ := lr.Attributes().Get(AttrEvidence)
	steps := ev.Slice().AsRaw()
	assert.Equal(t, "x1", steps[0].(map[string]any)["attributes"].(map[string]any)["k8s.audit.id"])
	shellStep := steps[1].(map[string]any)["attributes"].(map[string]any)
	assert.Equal(t, int64(42), shellStep["process.pid"], "the resource's attributes are evidence too")
	assert.Equal(t, "web", shellStep["k8s.pod.name"])
	assert.Equal(t, []any{"sh"}, shellStep["process.command_args"])
	assert.Equal(t, "chain in web after x1 to 203.0.113.9, <NA>", lr.Body().Str(),
		"a placeholder the firing event lacks comes from an earlier step; one no step has is <NA>")

	assert.Empty(t, e.Evaluate(exec(10*time.Minute), nil))
	assert.Empty(t, e.Evaluate(shell(11*time.Minute), nil))
	assert.Empty(t, e.Evaluate(connect(16*time.Minute), nil), "the chain took longer than within")
}

func TestStateIsBounded(t *testing.T) {
	e := NewEngine(load(t, statefulPack), StateConfig{MaxKeys: 100})
	for i := 0; i < 1000; i++ {
		e.Evaluate(event("k8s.audit", 0, map[string]any{"k8s.audit.object.resource": "secrets", "user.name": fmt.Sprint("u", i)}), nil)
	}
	assert.Equal(t, int64(900), e.Stats().DroppedState.Load())
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.thresholds {
		assert.Equal(t, 100, c.Len())
	}
}

func TestRunTestsWithSeries(t *testing.T) {
	set := load(t, statefulPack)
	for _, r := range set.Rules {
		switch r.Name {
		case "Burst":
			r.Tests = []TestCase{
				{Name: "three reads in a minute", Match: true, Series: []TestEvent{
					{At: 0, Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "a"}},
					{At: time.Second, Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "a"}},
					{At: 2 * time.Second, Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "a"}},
				}},
				{Name: "three reads by three users", Match: false, Series: []TestEvent{
					{Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "a"}},
					{Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "b"}},
					{Event: map[string]any{"k8s.audit.object.resource": "secrets", "user.name": "c"}},
				}},
			}
		case "Exec then shell then connect":
			pod := map[string]any{"k8s.namespace.name": "prod", "k8s.pod.name": "web"}
			r.Tests = []TestCase{
				{Name: "the chain", Match: true, Series: []TestEvent{
					{EventName: "k8s.audit", Event: map[string]any{"k8s.audit.object.subresource": "exec", "k8s.namespace.name": "prod", "k8s.pod.name": "web"}},
					{EventName: "process.exec", At: time.Second, Event: map[string]any{"process.executable.name": "sh"}, Resource: pod},
					{EventName: "network.connect", At: 2 * time.Second, Event: map[string]any{"server.port": 4444}, Resource: pod},
				}},
				{Name: "no exec first", Match: false, Series: []TestEvent{
					{EventName: "process.exec", Event: map[string]any{"process.executable.name": "sh"}, Resource: pod},
					{EventName: "network.connect", At: time.Second, Event: map[string]any{"server.port": 4444}, Resource: pod},
				}},
				{Name: "a single event", Match: false, Event: map[string]any{"server.port": 4444}},
			}
		}
	}
	var got []string
	for _, res := range set.RunTests() {
		got = append(got, fmt.Sprintf("%s/%s passed=%v", res.Rule.Name, res.Case.Name, res.Passed()))
	}
	assert.ElementsMatch(t, []string{
		"Burst/three reads in a minute passed=true",
		"Burst/three reads by three users passed=true",
		"Exec then shell then connect/the chain passed=true",
		"Exec then shell then connect/no exec first passed=true",
		"Exec then shell then connect/a single event passed=false",
	}, got)
}

func TestRunTests(t *testing.T) {
	pack := basePack + `
- rule: With tests
  events: [k8s.audit]
  condition: user.name == "alice" && k8s.audit.user.groups.exists(g, g == "dev")
  severity: low
  output: o
  tests:
    - name: alice in dev
      match: true
      event: {user.name: alice, k8s.audit.user.groups: [dev]}
    - name: bob
      match: false
      event: {user.name: bob, k8s.audit.user.groups: [dev]}
    - name: wrong expectation
      match: true
      event: {user.name: bob}
`
	res := load(t, pack).RunTests()
	require.Len(t, res, 3)
	assert.True(t, res[0].Passed())
	assert.True(t, res[1].Passed())
	assert.False(t, res[2].Passed())
	assert.True(t, strings.HasPrefix(res[2].String(), `FAIL file1.yaml:`), res[2].String())
}

func TestIndexNarrowsRulesWithoutChangingResults(t *testing.T) {
	pack := `
- list: write_verbs
  items: [create, update, patch]
- macro: pod_write
  condition: k8s.audit.object.resource == "pods" && k8s.audit.verb in write_verbs
- rule: Pod write
  events: [k8s.audit]
  condition: pod_write
  severity: low
  output: o
- rule: Secret get
  events: [k8s.audit]
  condition: '"secrets" == k8s.audit.object.resource && k8s.audit.verb == "get"'
  severity: low
  output: o
- rule: Anonymous
  events: [k8s.audit]
  condition: user.name == "system:anonymous" || k8s.audit.verb == "impersonate"
  severity: low
  output: o
- rule: Anonymous or unauthenticated
  events: [k8s.audit]
  condition: user.name == "system:anonymous" || (user.name == "" && k8s.audit.verb == "get")
  severity: low
  output: o
- rule: Unauthorized or no status
  events: [k8s.audit]
  condition: http.response.status_code in [401, 0]
  severity: low
  output: o
- rule: Any resource of two
  events: [k8s.audit]
  condition: k8s.audit.object.resource in ["pods", "secrets"] && k8s.audit.object.resource == "pods"
  severity: low
  output: o
`
	set := load(t, pack)
	ix := set.index["k8s.audit"]
	require.NotNil(t, ix)
	var reachable func(n *indexNode) []string
	reachable = func(n *indexNode) []string {
		if n == nil {
			return nil
		}
		out := map[string]bool{}
		for _, r := range n.rules {
			out[r.Name] = true
		}
		for _, fo := range n.fanout {
			for _, rs := range fo.byValue {
				for _, r := range rs {
					out[r.Name] = true
				}
			}
		}
		for _, c := range n.byValue {
			for _, name := range reachable(c) {
				out[name] = true
			}
		}
		for _, name := range reachable(n.rest) {
			out[name] = true
		}
		var names []string
		for name := range out {
			names = append(names, name)
		}
		sort.Strings(names)
		return names
	}
	root := ix.root
	assert.Equal(t, "k8s.audit.object.resource", root.attr, "the attribute most rules constrain")
	assert.Equal(t, []string{"Any resource of two", "Pod write"}, reachable(root.byValue["pods"]), "macros are looked into; in and == intersect")
	assert.Equal(t, []string{"Secret get"}, reachable(root.byValue["secrets"]))
	// The rules that do not constrain the resource are keyed, one node after
	// the other, on the next attributes.
	byAttr := map[string]*indexNode{}
	for n := root.rest; n != nil && n.attr != ""; n = n.rest {
		byAttr[n.attr] = n
	}
	require.Contains(t, byAttr, "user.name")
	require.Contains(t, byAttr, "http.response.status_code")
	assert.Equal(t, []string{"Anonymous or unauthenticated"}, reachable(byAttr["user.name"].byValue[""]), "a disjunction on one attribute joins its values")
	assert.Equal(t, []string{"Anonymous or unauthenticated"}, reachable(byAttr["user.name"].byValue["system:anonymous"]))
	assert.Equal(t, []string{"Unauthorized or no status"}, reachable(byAttr["http.response.status_code"].byValue["401"]))
	anon := byAttr["user.name"].rest
	require.NotNil(t, anon)
	assert.Equal(t, []string{"Anonymous"}, reachable(anon))
	assert.Empty(t, anon.rules, "a disjunction over two attributes is not evaluated for every event...")
	require.Len(t, anon.fanout, 2, "...but fanned out on both")
	assert.Equal(t, "Anonymous", anon.fanout[0].byValue["impersonate"][0].Name)
	assert.Equal(t, "Anonymous", anon.fanout[1].byValue["system:anonymous"][0].Name)
	assert.Equal(t, "k8s.audit.verb", root.byValue["secrets"].attr, "a bucket is keyed again on another attribute")

	e := NewEngine(set, StateConfig{})
	ev := func(user, verb, resource string) *Event {
		return event("k8s.audit", 0, map[string]any{"user.name": user, "k8s.audit.verb": verb, "k8s.audit.object.resource": resource,
			"http.response.status_code": 200})
	}
	assert.Equal(t, []string{"Pod write", "Anonymous", "Anonymous or unauthenticated", "Any resource of two"}, names(e.Evaluate(ev("system:anonymous", "create", "pods"), nil)), "merged in rule order")
	assert.Equal(t, []string{"Secret get"}, names(e.Evaluate(ev("bob", "get", "secrets"), nil)))
	assert.Equal(t, []string{"Anonymous", "Anonymous or unauthenticated"}, names(e.Evaluate(ev("system:anonymous", "get", "configmaps"), nil)))
	assert.Equal(t, []string{"Anonymous or unauthenticated"}, names(e.Evaluate(ev("", "get", "configmaps"), nil)))
	assert.Equal(t, []string{"Anonymous"}, names(e.Evaluate(ev("bob", "impersonate", ""), nil)))
	assert.Equal(t, []string{"Any resource of two"}, names(e.Evaluate(ev("bob", "list", "pods"), nil)))
	assert.Empty(t, e.Evaluate(ev("bob", "list", "nodes"), nil))
	noStatus := ev("bob", "list", "nodes")
	noStatus.Attrs.Remove("http.response.status_code")
	assert.Equal(t, []string{"Unauthorized or no status"}, names(e.Evaluate(noStatus, nil)), "an absent int reads as 0, in the index too")
	withStatus := func(code int) *Event {
		e := ev("bob", "list", "nodes")
		e.Attrs.PutInt("http.response.status_code", int64(code))
		return e
	}
	assert.Empty(t, e.Evaluate(withStatus(200), nil))
	assert.Equal(t, []string{"Unauthorized or no status"}, names(e.Evaluate(withStatus(401), nil)), "ints are indexed by their text")
	// The merge must not have written into the index's own slices.
	assert.Equal(t, []string{"Any resource of two", "Pod write"}, reachable(root.byValue["pods"]))
	assert.Equal(t, []string{"Anonymous"}, reachable(byAttr["user.name"].rest))
}

func TestIndexListsNonEmptyAndAnyOf(t *testing.T) {
	pack := `
- list: admin_groups
  items: [system:masters, admins]
- rule: Masters
  events: [k8s.audit]
  condition: '"system:masters" in k8s.audit.user.groups'
  severity: low
  output: o
- rule: Admin group
  events: [k8s.audit]
  condition: has_any(k8s.audit.user.groups, admin_groups) && k8s.audit.verb == "create"
  severity: low
  output: o
- rule: Impersonating
  events: [k8s.audit]
  condition: k8s.audit.impersonated_user.name != "" && user.name != "system:admin"
  severity: low
  output: o
- rule: Denied
  events: [k8s.audit]
  condition: http.response.status_code == 403 || k8s.audit.authorization.decision == "forbid"
  severity: low
  output: o
`
	set := load(t, pack)
	e := NewEngine(set, StateConfig{})
	ev := func(attrs map[string]any) *Event { return event("k8s.audit", 0, attrs) }
	candidates := func(ev *Event) []string {
		var out []string
		act := &activation{}
		act.reset(set, ev)
		for _, r := range set.index["k8s.audit"].candidates(act) {
			out = append(out, r.Name)
		}
		return out
	}
	plain := ev(map[string]any{"user.name": "bob", "k8s.audit.verb": "create", "k8s.audit.user.groups": []any{"dev"},
		"http.response.status_code": 200, "k8s.audit.authorization.decision": "allow"})
	assert.Empty(t, candidates(plain), "an ordinary event meets none of these rules")
	assert.Empty(t, e.Evaluate(plain, nil))

	masters := ev(map[string]any{"k8s.audit.verb": "create", "k8s.audit.user.groups": []any{"dev", "system:masters"}})
	assert.Equal(t, []string{"Masters", "Admin group"}, candidates(masters), "keyed on each element of a list")
	assert.Equal(t, []string{"Masters", "Admin group"}, names(e.Evaluate(masters, nil)))

	imp := ev(map[string]any{"k8s.audit.impersonated_user.name": "mallory", "user.name": "bob"})
	assert.Equal(t, []string{"Impersonating"}, names(e.Evaluate(imp, nil)), "keyed on any non-empty value")

	assert.Equal(t, []string{"Denied"}, names(e.Evaluate(ev(map[string]any{"http.response.status_code": 403}), nil)))
	assert.Equal(t, []string{"Denied"}, names(e.Evaluate(ev(map[string]any{"k8s.audit.authorization.decision": "forbid"}), nil)))
	both := ev(map[string]any{"http.response.status_code": 403, "k8s.audit.authorization.decision": "forbid"})
	assert.Equal(t, []string{"Denied"}, candidates(both), "a rule reached through two atoms is evaluated once")
}
