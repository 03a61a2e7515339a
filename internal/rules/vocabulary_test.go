package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rule is a one-rule file reading cond on events named ev.
func rule(ev, cond string) string {
	return fmt.Sprintf("- rule: R\n  events: [%q]\n  severity: low\n  output: o\n  condition: %q\n", ev, cond)
}

func matches(t *testing.T, set *Set, ev *Event) bool {
	t.Helper()
	return len(NewEngine(set, StateConfig{}).Evaluate(ev, nil)) > 0
}

func TestUnknownAttributeIsAWarningWithTheClosestName(t *testing.T) {
	file := `- rule: X
  events: [k8s.audit]
  severity: low
  output: by %{k8s.pod.nme}
  condition: user.nam == "a" || myapp.tenant == "acme" || k8s.pod.label.team == "x"
  exceptions:
    - name: e
      field: usr.name
      values: [a]
  throttle: {by: [k8s.namespace.nam], period: 1m}
`
	set := load(t, file)
	var got []string
	for _, w := range set.Warnings {
		got = append(got, w.String())
	}
	dyn := "; it is read as the event carries it (dyn), null when absent"
	assert.ElementsMatch(t, []string{
		`file1.yaml:1: rule "X": output: placeholder "k8s.pod.nme" is not a known attribute (did you mean k8s.pod.name?)` + dyn,
		`file1.yaml:5: rule "X": attribute "user.nam" is not a known attribute (did you mean user.name?)` + dyn,
		`file1.yaml:5: rule "X": attribute "myapp.tenant" is not a known attribute` + dyn,
		`file1.yaml:7: rule "X": exception "e": field "usr.name" is not a known attribute (did you mean user.name?)` + dyn,
		`file1.yaml:1: rule "X": throttle.by "k8s.namespace.nam" is not a known attribute (did you mean k8s.namespace.name?)` + dyn,
	}, got, "pod labels are an open family: no warning for k8s.pod.label.team")
}

func TestAMacrosUnknownNameIsReportedAtTheMacroOnly(t *testing.T) {
	set := load(t, "- macro: team_pod\n  condition: k8s.pod.lable.team == \"a\"\n"+
		rule("e", "team_pod")+strings.Replace(rule("e", "team_pod || app.x == 1"), "R", "S", 1))
	var got []string
	for _, w := range set.Warnings {
		got = append(got, w.String())
	}
	dyn := "; it is read as the event carries it (dyn), null when absent"
	assert.Equal(t, []string{
		`file1.yaml:1: macro "team_pod": attribute "k8s.pod.lable.team" is not a known attribute (did you mean k8s.pod.label.team?)` + dyn,
		`file1.yaml:12: rule "S": attribute "app.x" is not a known attribute` + dyn,
	}, got)
}

func TestStrictAttributesRefuseUnknownNames(t *testing.T) {
	_, err := Load([]Source{{Name: "f.yaml", Data: []byte(rule("k8s.audit", `user.nam == "a"`))}}, Options{StrictAttributes: true})
	require.Error(t, err)
	assert.Equal(t, `f.yaml:5: rule "R": attribute "user.nam" is not a known attribute (did you mean user.name?)`, err.Error())

	set, err := Load([]Source{{Name: "f.yaml", Data: []byte(rule("k8s.audit", `k8s.pod.label.team == "a" && has(k8s.pod.name)`))}},
		Options{StrictAttributes: true})
	require.NoError(t, err, "known names and open families are fine when strict")
	assert.Empty(t, set.Warnings)
}

func TestUnknownAttributesAreTypedByTheEvent(t *testing.T) {
	for _, tc := range []struct {
		cond  string
		value any // the event's app.value; nil: absent
		want  bool
	}{
		{`app.value == "acme"`, "acme", true},
		{`app.value == "acme"`, "other", false},
		{`app.value == "acme"`, nil, false},
		{`app.value != "acme"`, nil, true},
		{`app.value.startsWith("ac")`, "acme", true},
		{`app.value.startsWith("ac")`, nil, false}, // null has no startsWith: an error, no match
		{`app.value > 3`, int64(4), true},
		{`app.value > 3`, int64(3), false},
		{`app.value > 3`, 3.5, true},
		{`app.value > 3`, "4", false}, // a string is not a number
		{`app.value == true`, true, true},
		{`app.value`, true, true},
		{`app.value`, false, false},
		{`app.value >= 0.5`, 0.75, true},
		{`app.value == null`, nil, true},
		{`app.value == null`, "", false},
		{`has(app.value)`, "", true},
		{`has(app.value)`, nil, false},
		{`!has(app.value)`, nil, true},
		{`app.value.exists(x, x == 2)`, []any{int64(1), int64(2)}, true},
		{`app.value.?k.orValue("") == "v"`, map[string]any{"k": "v"}, true},
	} {
		for _, celOnly := range []bool{false, true} {
			set, err := Load([]Source{{Name: "f", Data: []byte(rule("e", tc.cond))}}, Options{CELOnly: celOnly})
			require.NoError(t, err, tc.cond)
			attrs := map[string]any{}
			if tc.value != nil {
				attrs["app.value"] = tc.value
			}
			assert.Equal(t, tc.want, matches(t, set, event("e", 0, attrs)), "%s on %#v (CEL only: %v)", tc.cond, tc.value, celOnly)
		}
	}
}

func TestHasTestsAnAttributesPresence(t *testing.T) {
	set := load(t, rule("e", `has(k8s.pod.name) && !has(k8s.pod.uid)`))
	ev := event("e", 0, nil)
	ev.Resource.PutStr("k8s.pod.name", "") // present, even empty
	assert.True(t, matches(t, set, ev), "on the resource")
	assert.False(t, matches(t, set, event("e", 0, map[string]any{"k8s.pod.uid": "u", "k8s.pod.name": "web"})))

	// has() on a map attribute's field and on a comprehension variable's
	// stays CEL's own.
	set = load(t, rule("e", `has(k8s.audit.request_object.spec) && k8s.audit.request_object.spec.containers.exists(c, has(c.securityContext))`))
	assert.Empty(t, set.Warnings, "c.securityContext is not an attribute")
	assert.True(t, matches(t, set, event("e", 0, map[string]any{"k8s.audit.request_object": map[string]any{
		"spec": map[string]any{"containers": []any{map[string]any{"securityContext": map[string]any{}}}}}})))
	assert.False(t, matches(t, set, event("e", 0, map[string]any{"k8s.audit.request_object": map[string]any{
		"spec": map[string]any{"containers": []any{map[string]any{"name": "x"}}}}})))
}

// Pod labels come as one resource attribute each (k8s.pod.label.<key>, as
// internal/podidentity writes them): readable one by one and as one map.
func TestPodLabelsReadAsAttributesAndAsAMap(t *testing.T) {
	pod := func(labels map[string]string) *Event {
		ev := event("process.exec", 0, map[string]any{"process.executable.name": "sh"})
		for k, v := range labels {
			ev.Resource.PutStr("k8s.pod.label."+k, v)
		}
		ev.Resource.PutStr("k8s.pod.annotation.owner", "team-a")
		return ev
	}
	payments := pod(map[string]string{"team": "payments", "app.kubernetes.io/name": "web"})
	other := pod(map[string]string{"team": "search"})
	for cond, want := range map[string][2]bool{ // on payments, on other
		`k8s.pod.label.team == "payments"`:                   {true, false},
		`k8s.pod.label["team"] == "payments"`:                {true, false},
		`k8s.pod.label["app.kubernetes.io/name"] == "web"`:   {true, false},
		`"app.kubernetes.io/name" in k8s.pod.label`:          {true, false},
		`has(k8s.pod.label.team)`:                            {true, true},
		`has(k8s.pod.label.tier)`:                            {false, false},
		`k8s.pod.label.?tier.orValue("none") == "none"`:      {true, true},
		`k8s.pod.label.size() == 2`:                          {true, false},
		`k8s.pod.annotation.owner == "team-a"`:               {true, true},
		`k8s.pod.label.exists(k, k.startsWith("app."))`:      {true, false},
		`k8s.pod.label.team in ["payments", "billing"]`:      {true, false},
		`process.executable.name == "sh" && !has(app.value)`: {true, true},
	} {
		for _, celOnly := range []bool{false, true} {
			set, err := Load([]Source{{Name: "f", Data: []byte(rule("process.exec", cond))}}, Options{CELOnly: celOnly})
			require.NoError(t, err, cond)
			assert.Equal(t, want[0], matches(t, set, payments), "%s on the payments pod", cond)
			assert.Equal(t, want[1], matches(t, set, other), "%s on another pod", cond)
			if !strings.Contains(cond, "app.value") {
				assert.Empty(t, set.Warnings, cond)
			}
		}
	}
}

func TestDidYouMeanAPodLabel(t *testing.T) {
	for name, want := range map[string]string{
		"k8s.pod.labels.team":           "k8s.pod.label.team",
		"k8s.pod.lable.team":            "k8s.pod.label.team",
		"k8s.pod.annotations.owner":     "k8s.pod.annotation.owner",
		"k8s.pod.nam":                   "k8s.pod.name",
		"process.executable.nmae":       "process.executable.name",
		"nothing.like.any.known.name.x": "",
	} {
		set := load(t, rule("e", name+` == "x"`))
		require.Len(t, set.Warnings, 1, name)
		if want == "" {
			assert.NotContains(t, set.Warnings[0].Reason, "did you mean", name)
			continue
		}
		assert.Contains(t, set.Warnings[0].Reason, "(did you mean "+want+"?)", name)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"user.nam", "user.name", 1}, {"usr.name", "user.name", 1}, {"kitten", "sitting", 3}, {"", "ab", 2}} {
		assert.Equal(t, tc.want, editDistance(tc.a, tc.b), "%q %q", tc.a, tc.b)
	}
}
