package rules

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestResult is the outcome of one of a rule's own test cases.
type TestResult struct {
	Rule *Rule
	Case TestCase
	Got  bool  // whether the condition (with exceptions) matched
	Err  error // a bad test event or a failing condition
}

// Passed reports whether the case got what it expects.
func (t TestResult) Passed() bool { return t.Err == nil && t.Got == t.Case.Match }

func (t TestResult) String() string {
	status := "ok"
	if !t.Passed() {
		status = "FAIL"
	}
	s := fmt.Sprintf("%s %s:%d %q / %q: want match=%v, got %v", status, t.Rule.File, t.Case.Line, t.Rule.Name, t.Case.Name, t.Case.Match, t.Got)
	if t.Err != nil {
		s += ": " + t.Err.Error()
	}
	return s
}

// RunTests evaluates every rule's test cases against that rule alone. Sequence
// rules' cases are not supported yet and are skipped.
func (s *Set) RunTests() []TestResult {
	var out []TestResult
	act := &activation{}
	for _, r := range s.Rules {
		if r.Sequence != nil {
			continue
		}
		for _, tc := range r.Tests {
			res := TestResult{Rule: r, Case: tc}
			ev, err := tc.event(r)
			if err != nil {
				res.Err = err
				out = append(out, res)
				continue
			}
			act.reset(s, &ev)
			val, _, err := r.prg.Eval(act)
			if err != nil {
				res.Err = fmt.Errorf("condition failed: %w", err)
			} else {
				res.Got = val.Value() == true
			}
			out = append(out, res)
		}
	}
	return out
}

// event builds the test case's event; its name defaults to the rule's first.
func (tc TestCase) event(r *Rule) (Event, error) {
	ev := Event{Name: tc.EventName, Attrs: pcommon.NewMap(), Resource: pcommon.NewMap()}
	if ev.Name == "" && len(r.Events) > 0 {
		ev.Name = r.Events[0]
	}
	if err := ev.Attrs.FromRaw(tc.Event); err != nil {
		return ev, fmt.Errorf("event: %w", err)
	}
	if err := ev.Resource.FromRaw(tc.Resource); err != nil {
		return ev, fmt.Errorf("resource: %w", err)
	}
	return ev, nil
}
