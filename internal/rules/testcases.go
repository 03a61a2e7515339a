package rules

import (
	"fmt"
	"time"

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

// RunTests evaluates every rule's test cases against that rule alone: a single
// event against its condition, a series through an engine (thresholds,
// sequences, throttling), where "match" means the rule raised an alert.
func (s *Set) RunTests() []TestResult {
	var out []TestResult
	act := &activation{}
	for _, r := range s.Rules {
		for _, tc := range r.Tests {
			res := TestResult{Rule: r, Case: tc}
			if len(tc.Series) > 0 || r.Sequence != nil {
				res.Got, res.Err = s.runSeries(r, tc)
				out = append(out, res)
				continue
			}
			ev, err := tc.event(r)
			if err != nil {
				res.Err = err
				out = append(out, res)
				continue
			}
			act.reset(s, &ev)
			res.Got, res.Err = evalBoth(&r.cond, act)
			out = append(out, res)
		}
	}
	return out
}

// runSeries feeds a test series to a fresh engine and reports whether rule r
// raised an alert.
func (s *Set) runSeries(r *Rule, tc TestCase) (bool, error) {
	if len(tc.Series) == 0 {
		return false, fmt.Errorf("a %s rule is tested with a series: of events", map[bool]string{true: "sequence", false: "stateful"}[r.Sequence != nil])
	}
	e := NewEngine(s, StateConfig{})
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ms []Match
	for i, te := range tc.Series {
		ev, err := TestCase{EventName: te.EventName, Event: te.Event, Resource: te.Resource, Body: te.Body}.event(r)
		if err != nil {
			return false, fmt.Errorf("series[%d]: %w", i, err)
		}
		ev.Time = start.Add(te.At)
		for _, m := range e.Evaluate(&ev, ms[:0]) {
			if m.Rule == r {
				return true, nil
			}
		}
	}
	return false, nil
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
	if tc.Body != "" {
		ev.Body = pcommon.NewValueStr(tc.Body)
	}
	return ev, nil
}

// evalBoth evaluates a test event both ways, natively and with CEL alone, and
// reports it when they disagree: CEL is the reference.
func evalBoth(c *condition, act *activation) (bool, error) {
	got, err := c.evalCEL(act)
	if err != nil {
		return false, fmt.Errorf("condition failed: %w", err)
	}
	if c.native != nil {
		if v := c.native.eval(act, c.limit); v.k == nBool && v.b != got {
			return got, fmt.Errorf("native evaluation says %v where CEL says %v: a bug in native.go", v.b, got)
		}
	}
	return got, nil
}
