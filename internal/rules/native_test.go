package rules

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	packs "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// nativeConditions cover what native evaluation compiles, and the corners
// where CEL errs (a missing key, a type mismatch) and native evaluation must
// defer to it rather than answer.
var nativeConditions = []string{
	`user.name == "alice"`,
	`"alice" != user.name`,
	`user.name in ["alice", "bob"]`,
	`user.name in admins`,
	`user.name.startsWith("system:") && !user.name.endsWith("-controller")`,
	`user.name.contains("ali") || http.response.status_code >= 500`,
	`http.response.status_code > 399 && http.response.status_code <= 404`,
	`k8s.audit.request_object.?spec.?replicas.orValue(0) == 3.0`,
	`http.response.status_code < 100u`,
	`size(user.name) == 5 && user.name.size() > 2`,
	`string(http.response.status_code) == "403"`,
	`user.name.lowerAscii() == "alice"`,
	`user.name.matches("^[a-z]+$")`,
	`"system:masters" in k8s.audit.user.groups`,
	`has_any(k8s.audit.user.groups, admins)`,
	`k8s.audit.user.groups.exists(g, g.startsWith("oidc:"))`,
	`k8s.audit.user.groups.all(g, g != "")`,
	`k8s.audit.user.groups.exists_one(g, g == "dev")`,
	`k8s.audit.user.groups.map(g, g + "!").exists(g, g == "dev!")`,
	`k8s.audit.user.groups.filter(g, g.size() > 3).size() == 1`,
	`size(k8s.audit.user.groups + ["x"]) == 3`,
	`k8s.audit.request_object.?spec.?hostNetwork.orValue(false) == true`,
	`k8s.audit.request_object.?spec.?replicas.orValue(0) > 2`,
	`k8s.audit.request_object.?spec.?containers.orValue([]).exists(c, c.?securityContext.?privileged.orValue(false))`,
	`(k8s.audit.request_object.?spec.?containers.orValue([]) + k8s.audit.request_object.?spec.?initContainers.orValue([])).exists(c, c.image.startsWith("evil/"))`,
	`k8s.audit.request_object.spec.hostPID == true`,
	`has(k8s.audit.request_object.spec) && k8s.audit.request_object.spec.hostIPC`,
	`k8s.audit.request_object.?spec.hasValue()`,
	`k8s.audit.request_object["kind"] == "Pod"`,
	`"kind" in k8s.audit.request_object`,
	`k8s.audit.request_object.exists(k, k == "spec")`,
	`k8s.audit.request_object.?spec.?containers.orValue([]).exists(c, c.?ports.orValue([]).exists(p, p.containerPort == 22))`,
	`k8s.audit.request_object.?spec.?containers.orValue([]).all(c, c.name != "")`,
	`k8s.audit.request_object.?metadata.?labels.orValue({}).exists(k, k == "app")`,
	`k8s.audit.request_object.?spec.?containers.orValue([])[0].name == "web"`,
	`glob(url.path, "/admin/*") || glob_any(url.path, ["/.git/*", "/.env"])`,
	`starts_with_any(url.path, ["/api", "/apis"]) && ends_with_any(url.path, ["/exec"])`,
	`icontains(url.path, "UNION") || icontains_any(url.path, ["<script", "jndi:"])`,
	`url_decode(url_decode(url.path)).contains("../")`,
	`in_cidr(client.address, ["10.0.0.0/8", "fd00::/8"])`,
	`k8ssec.process.host || k8ssec.process.fileless`,
	`event.name == "k8s.audit" && event.severity == ""`,
	`user.name + "@x" == "alice@x"`,
	`http.response.status_code + 1 == 404`,
	// The open vocabulary: app.value is no known attribute, read as dyn.
	`app.value == "x"`,
	`app.value == 7 || app.value == 7.0`,
	`app.value > 2`,
	`app.value == true`,
	`app.value`,
	`app.value >= 1.5`,
	`app.value != null && has(app.value)`,
	`!has(app.value)`,
	`app.value in ["x", "y"]`,
	`app.value.startsWith("x")`,
	`app.value.exists(v, v == 1)`,
	`app.value.?k.orValue("") == "v"`,
	`has(k8s.pod.label.team) && k8s.pod.label.team == "payments"`,
	`k8s.pod.label["team"] == "payments"`,
	`"team" in k8s.pod.label && k8s.pod.label.size() == 1`,
}

// nativeEvents vary every attribute the conditions read: present, absent, of
// another type, and shaped to make CEL err.
func nativeEvents() []*Event {
	pod := func(spec map[string]any) map[string]any {
		return map[string]any{"kind": "Pod", "spec": spec, "metadata": map[string]any{"labels": map[string]any{"app": "web"}}}
	}
	return []*Event{
		event("k8s.audit", 0, map[string]any{}),
		event("k8s.audit", 0, map[string]any{"user.name": "alice", "http.response.status_code": 403, "k8s.audit.user.groups": []any{"dev", "oidc:team"}}),
		event("k8s.audit", 0, map[string]any{"user.name": "system:kube-controller-manager", "http.response.status_code": "404", "k8s.audit.user.groups": []any{"system:masters", ""}}),
		event("k8s.audit", 0, map[string]any{"user.name": "Alice", "http.response.status_code": 503.7, "k8s.audit.user.groups": "dev"}),
		event("k8s.audit", 0, map[string]any{"user.name": 42, "k8s.audit.user.groups": []any{1, "dev"}, "client.address": "10.1.2.3", "url.path": "/%252e%252e/etc/passwd"}),
		event("k8s.audit", 0, map[string]any{"url.path": "/admin/x", "client.address": "fd00::1", "k8ssec.process.host": true}),
		event("k8s.audit", 0, map[string]any{"url.path": "/?q=1%20UNION%20select", "client.address": "not an ip", "k8ssec.process.fileless": "yes"}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": pod(map[string]any{
			"hostNetwork": true, "hostPID": true, "replicas": 3,
			"containers": []any{
				map[string]any{"name": "web", "image": "registry/web", "securityContext": map[string]any{"privileged": true}, "ports": []any{map[string]any{"containerPort": 22}}},
				map[string]any{"name": "", "image": "evil/miner"},
			},
			"initContainers": []any{map[string]any{"name": "init", "image": "evil/init"}},
		})}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": pod(map[string]any{
			"containers": []any{map[string]any{"name": "web", "securityContext": map[string]any{"privileged": "yes"}, "ports": []any{map[string]any{"name": "http"}}}},
		})}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": map[string]any{"spec": "not a map", "kind": 7}}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": map[string]any{"spec": map[string]any{"containers": "nope", "replicas": "3", "hostPID": nil}}}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": []any{map[string]any{"op": "add"}}}),
		event("k8s.audit", 0, map[string]any{"k8s.audit.request_object": pod(map[string]any{"containers": []any{}})}),
		// Unknown attributes of every type, and missing (above).
		event("k8s.audit", 0, map[string]any{"app.value": "x"}),
		event("k8s.audit", 0, map[string]any{"app.value": 7}),
		event("k8s.audit", 0, map[string]any{"app.value": true}),
		event("k8s.audit", 0, map[string]any{"app.value": 1.5}),
		event("k8s.audit", 0, map[string]any{"app.value": 7.0}),
		event("k8s.audit", 0, map[string]any{"app.value": []any{1, "x"}}),
		event("k8s.audit", 0, map[string]any{"app.value": map[string]any{"k": "v"}}),
		event("k8s.audit", 0, map[string]any{"app.value": nil, "k8s.pod.label.team": 5}),
		withResource(event("k8s.audit", 0, map[string]any{"app.value": false}), map[string]any{"k8s.pod.label.team": "payments"}),
	}
}

func withResource(ev *Event, attrs map[string]any) *Event {
	if err := ev.Resource.FromRaw(attrs); err != nil {
		panic(err)
	}
	return ev
}

// agree checks one condition on one event: native evaluation, where it
// answers, answers as CEL does, and never answers where CEL errs.
func agree(t *testing.T, r *Rule, act *activation, what string) (decided bool) {
	t.Helper()
	want, celErr := r.cond.evalCEL(act)
	got := r.cond.native.eval(act, r.cond.limit)
	switch {
	case got.k == nStop:
		t.Errorf("%s: native evaluation hit the cost limit", what)
	case got.k != nBool:
		return false
	case celErr != nil:
		t.Errorf("%s: CEL errs (%v) but native evaluation says %v", what, celErr, got.b)
	case got.b != want:
		t.Errorf("%s: native evaluation says %v, CEL says %v", what, got.b, want)
	}
	return true
}

func TestNativeAgreesWithCEL(t *testing.T) {
	var b strings.Builder
	b.WriteString("- list: admins\n  items: [system:masters, alice, dev]\n")
	for i, cond := range nativeConditions {
		fmt.Fprintf(&b, "- rule: r%d\n  events: [k8s.audit]\n  severity: low\n  output: o\n  condition: %q\n", i, cond)
	}
	set := load(t, b.String())
	decided, dynDecided, dynTotal := 0, 0, 0
	for i, r := range set.Rules {
		require.NotNil(t, r.cond.native, "condition %q compiles natively", nativeConditions[i])
		dyn := strings.Contains(nativeConditions[i], "app.value") || strings.Contains(nativeConditions[i], "k8s.pod.label")
		for j, ev := range nativeEvents() {
			act := &activation{}
			act.reset(set, ev)
			ok := agree(t, r, act, fmt.Sprintf("%q on event %d", nativeConditions[i], j))
			if ok {
				decided++
			}
			if dyn {
				dynTotal++
				if ok {
					dynDecided++
				}
			}
		}
	}
	t.Logf("open vocabulary: native evaluation decided %d of %d", dynDecided, dynTotal)
	assert.Greater(t, dynDecided, dynTotal/2, "the dynamic path is mostly native, not only CEL's")
	// Undecided answers go to CEL, correct but slow: most must be decided.
	total := len(set.Rules) * len(nativeEvents())
	assert.Greater(t, decided, total*3/4, "native evaluation decided %d of %d", decided, total)
}

func TestNativeDefersWhatItDoesNotCover(t *testing.T) {
	set := load(t, `
- rule: map literal
  events: [k8s.audit]
  severity: low
  output: o
  condition: '{"a": 1}["a"] == 1'
`)
	assert.Nil(t, set.Rules[0].cond.native, "a map literal is CEL's alone")
	e := NewEngine(set, StateConfig{})
	assert.Len(t, e.Evaluate(event("k8s.audit", 0, nil), nil), 1, "and CEL still evaluates it")
}

func TestNativeCostLimit(t *testing.T) {
	set, err := Load([]Source{{Name: "f", Data: []byte(`
- rule: Slow
  events: [t]
  severity: low
  output: o
  condition: process.command_args.all(a, process.command_args.all(b, process.command_args.all(c, a + b + c != "x")))
`)}}, Options{CostLimit: 10000})
	require.NoError(t, err)
	r := set.Rules[0]
	require.NotNil(t, r.cond.native)
	args := make([]any, 100)
	for i := range args {
		args[i] = fmt.Sprint(i)
	}
	act := &activation{}
	act.reset(set, event("t", 0, map[string]any{"process.command_args": args}))
	assert.Equal(t, nStop, r.cond.native.eval(act, r.cond.limit).k, "a million steps stop at the limit")
	ok, err := r.cond.eval(act)
	assert.False(t, ok)
	assert.ErrorIs(t, err, errCostLimit)
}

// TestNativeAgreesWithCELOnThePacks runs every default rule on events made of
// random mixes of the attribute values their own tests use, and of values of
// the wrong type: native evaluation and CEL must agree on each, and the index
// must offer every rule whose condition holds.
func TestNativeAgreesWithCELOnThePacks(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	matches := 0
	for _, name := range packs.PackNames() {
		data, _ := packs.Pack(name)
		set, err := Load([]Source{{Name: name + ".yaml", Data: data}}, Options{StrictAttributes: true})
		require.NoError(t, err)
		values := map[string][]any{}
		var names []string
		for _, r := range set.Rules {
			for _, tc := range r.Tests {
				for k, v := range tc.Event {
					if _, seen := values[k]; !seen {
						names = append(names, k)
					}
					values[k] = append(values[k], v)
				}
			}
		}
		odd := []any{nil, 7, "x", []any{"a", 1}, map[string]any{"spec": "x"}, true}
		for i := 0; i < 300; i++ {
			attrs := map[string]any{}
			for _, k := range names {
				switch rng.Intn(4) {
				case 0: // absent
				case 1:
					attrs[k] = odd[rng.Intn(len(odd))]
				default:
					attrs[k] = values[k][rng.Intn(len(values[k]))]
				}
			}
			ev := event("", 0, attrs)
			for _, r := range set.Rules {
				if r.Sequence != nil || !r.Enabled {
					continue
				}
				ev.Name = r.Events[0]
				act := &activation{}
				act.reset(set, ev)
				what := fmt.Sprintf("%s: %q on %v", name, r.Name, attrs)
				if r.cond.native != nil {
					agree(t, r, act, what)
				}
				// The index never hides a match.
				if matched, err := r.cond.evalCEL(act); err == nil && matched {
					matches++
					act.reset(set, ev)
					assert.Contains(t, set.index[ev.Name].candidates(act), r, "the index hides a match: %s", what)
				}
			}
		}
	}
	assert.Greater(t, matches, 200, "random events must match rules often enough to check the index")
}
