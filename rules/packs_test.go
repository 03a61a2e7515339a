package rules_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			set, err := rules.Load([]rules.Source{{Name: name, Data: data}}, rules.Options{})
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
	set, err := rules.Load(srcs, rules.Options{})
	require.NoError(t, err)
	assert.False(t, set.HasAction(rules.ActionKill))

	runtime, _ := rulepacks.Pack("runtime")
	set, err = rules.Load([]rules.Source{{Name: "runtime", Data: runtime}, {Name: "response.yaml", Data: []byte(`
- override: Crypto miner started
  action: kill
- override: Reverse shell command line
  action: kill
`)}}, rules.Options{})
	require.NoError(t, err)
	var killers []string
	for _, r := range set.Rules {
		if r.Action == rules.ActionKill {
			killers = append(killers, r.Name)
		}
	}
	assert.ElementsMatch(t, []string{"Crypto miner started", "Reverse shell command line"}, killers)
}
