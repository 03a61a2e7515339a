package rules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// TestDefaultPacks holds every default pack to its promises: it compiles, every
// rule has MITRE tags and at least one positive and one negative test event,
// and every test event gives the expected answer.
func TestDefaultPacks(t *testing.T) {
	names := rulepacks.PackNames()
	require.Contains(t, names, "k8s_audit")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, ok := rulepacks.Pack(name)
			require.True(t, ok)
			set, err := rules.Load([]rules.Source{{Name: name, Data: data}}, rules.Options{StrictAttributes: true})
			require.NoError(t, err)
			require.NotEmpty(t, set.Rules)
			ids := map[string]bool{}
			for _, r := range set.Rules {
				assert.NotEmpty(t, r.ID, r.Name)
				assert.False(t, ids[r.ID], "duplicate id %s", r.ID)
				ids[r.ID] = true
				assert.NotEmpty(t, r.Tactics, "%s: a MITRE tactic tag (mitre.TA....)", r.Name)
				assert.NotEmpty(t, r.Techniques, "%s: a MITRE technique tag (mitre.T....)", r.Name)
				assert.NotEmpty(t, r.Description, r.Name)
				var pos, neg int
				for _, tc := range r.Tests {
					if tc.Match {
						pos++
					} else {
						neg++
					}
				}
				assert.Positive(t, pos, "%s: a test event that must match", r.Name)
				assert.Positive(t, neg, "%s: a test event that must not match", r.Name)
			}
			results := set.RunTests()
			var failed []string
			for _, res := range results {
				if !res.Passed() {
					failed = append(failed, res.String())
				}
			}
			assert.Empty(t, failed, strings.Join(failed, "\n"))
			t.Logf("%s: %d rules, %d test cases", name, len(set.Rules), len(results))
		})
	}
}

// TestNoPackKills: no default rule kills; action: kill is the operator's
// choice, in an override (README.md, security_rules settings), which this
// test loads to keep the documented example valid.
func TestNoPackKills(t *testing.T) {
	var srcs []rules.Source
	for _, name := range rulepacks.PackNames() {
		data, _ := rulepacks.Pack(name)
		srcs = append(srcs, rules.Source{Name: name, Data: data})
	}
	set, err := rules.Load(srcs, rules.Options{StrictAttributes: true})
	require.NoError(t, err)
	assert.False(t, set.HasAction(rules.ActionKill))

	runtime, _ := rulepacks.Pack("runtime")
	set, err = rules.Load([]rules.Source{{Name: "runtime", Data: runtime}, {Name: "response.yaml", Data: []byte(`
- override: Crypto miner started
  action: kill
- override: Reverse shell command line
  action: kill
`)}}, rules.Options{StrictAttributes: true})
	require.NoError(t, err)
	var killers []string
	for _, r := range set.Rules {
		if r.Action == rules.ActionKill {
			killers = append(killers, r.Name)
		}
	}
	assert.ElementsMatch(t, []string{"Crypto miner started", "Reverse shell command line"}, killers)
}

// auditAlerts loads the k8s_audit pack with extra (a user's overrides) and
// returns the names of the rules that alert on one audit event.
func auditAlerts(t *testing.T, extra string, attrs map[string]any) []string {
	t.Helper()
	data, ok := rulepacks.Pack("k8s_audit")
	require.True(t, ok)
	set, err := rules.Load([]rules.Source{{Name: "k8s_audit", Data: data}, {Name: "mine.yaml", Data: []byte(extra)}}, rules.Options{StrictAttributes: true})
	require.NoError(t, err)
	m := pcommon.NewMap()
	require.NoError(t, m.FromRaw(attrs))
	ev := rules.Event{Name: "k8s.audit", Attrs: m, Resource: pcommon.NewMap(), Time: time.Now()}
	var names []string
	for _, match := range rules.NewEngine(set, rules.StateConfig{}).Evaluate(&ev, nil) {
		names = append(names, match.Rule.Name)
	}
	return names
}

// The namespace lists are empty in the pack; a user's file fills them.
func TestDisallowedNamespaceLists(t *testing.T) {
	const rule = "Disallowed namespace created or used"
	nsCreate := map[string]any{"user.name": "alice", "k8s.audit.verb": "create",
		"k8s.audit.object.resource": "namespaces", "k8s.audit.object.name": "crypto", "http.response.status_code": 201}
	podIn := map[string]any{"user.name": "alice", "k8s.audit.verb": "create", "k8s.audit.object.resource": "pods",
		"k8s.namespace.name": "crypto", "k8s.audit.object.name": "miner", "http.response.status_code": 201}

	assert.NotContains(t, auditAlerts(t, "", nsCreate), rule, "empty lists: any name may be created")
	assert.NotContains(t, auditAlerts(t, "", podIn), rule)

	deny := "- list: disallowed_namespaces\n  append: true\n  items: [crypto]\n"
	assert.Contains(t, auditAlerts(t, deny, nsCreate), rule)
	assert.Contains(t, auditAlerts(t, deny, podIn), rule, "a pod created inside a disallowed namespace")

	allow := "- list: allowed_namespaces\n  append: true\n  items: [shop, web]\n"
	assert.Contains(t, auditAlerts(t, allow, nsCreate), rule, "not on the allow-list")
	nsCreate["k8s.audit.object.name"] = "shop"
	assert.NotContains(t, auditAlerts(t, allow, nsCreate), rule)
}
