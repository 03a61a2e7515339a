package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// alert is how test -events prints an alert: one JSON object per line.
type alert struct {
	Rule       string         `json:"rule"`
	Severity   string         `json:"severity"`
	Output     string         `json:"output"`
	Time       string         `json:"time"`
	Attributes map[string]any `json:"attributes"`
}

// flatEvent is the hand-written form of an event line.
type flatEvent struct {
	EventName  string         `json:"event_name"`
	Time       string         `json:"time"`
	Attributes map[string]any `json:"attributes"`
	Resource   map[string]any `json:"resource"`
}

// replay evaluates every event of the file through an engine, in order, and
// prints the alerts on stdout; problems go to stderr.
func replay(set *rules.Set, path string, stdout, stderr io.Writer) int {
	in, name := io.Reader(os.Stdin), "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(stderr, "secrules: %v\n", err)
			return 1
		}
		defer f.Close()
		in, name = f, path
	}
	eng := rules.NewEngine(set, rules.StateConfig{})
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	var (
		matches                []rules.Match
		last                   time.Time
		nEvents, nAlerts, nBad int
	)
	emit := func(ev *rules.Event, m *rules.Match, now time.Time) {
		lr := plog.NewLogRecord()
		m.WriteAlert(ev, lr, now)
		a := alert{Rule: m.Rule.Name, Severity: lr.SeverityText(), Output: lr.Body().AsString(),
			Time: lr.Timestamp().AsTime().UTC().Format(time.RFC3339Nano), Attributes: lr.Attributes().AsRaw()}
		if err := enc.Encode(a); err != nil {
			fmt.Fprintf(stderr, "secrules: alert of %q: %v\n", m.Rule.Name, err)
			return
		}
		nAlerts++
	}

	r := bufio.NewReaderSize(in, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			fmt.Fprintf(stderr, "secrules: %s: %v\n", name, readErr)
			return 1
		}
		if len(bytes.TrimSpace(line)) > 0 {
			evs, err := parseLine(line, time.Now())
			if err != nil {
				fmt.Fprintf(stderr, "%s:%d: %v\n", name, lineNo, err)
				nBad++
			}
			for i := range evs {
				ev := &evs[i]
				nEvents++
				matches = eng.Evaluate(ev, matches[:0])
				for j := range matches {
					emit(ev, &matches[j], ev.Time)
				}
				if ev.Time.After(last) {
					last = ev.Time
				}
			}
		}
		if readErr != nil { // io.EOF
			break
		}
	}

	// The input is over: close every throttling period, so that what was
	// throttled is counted.
	var longest time.Duration
	for _, r := range set.Rules {
		if r.Throttle != nil && r.Throttle.Period > longest {
			longest = r.Throttle.Period
		}
	}
	end := last.Add(longest)
	for _, m := range eng.Flush(end) {
		emit(nil, &m, end)
	}

	summary := fmt.Sprintf("%s: %s, %s", name, plural(nEvents, "event"), plural(nAlerts, "alert"))
	if n := eng.Stats().Errors.Load(); n > 0 {
		summary += fmt.Sprintf(", %s (cost limit or runtime error)", plural(int(n), "failed condition"))
	}
	if nBad > 0 {
		summary += ", " + plural(nBad, "bad line")
	}
	fmt.Fprintln(stderr, summary)
	if nBad > 0 {
		return 1
	}
	return 0
}

// parseLine reads one line: an OTLP/JSON logs export (every record, with its
// resource) or a flat event. now stands in for a missing time.
func parseLine(line []byte, now time.Time) ([]rules.Event, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(line, &keys); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("not a JSON object but a JSON %s", te.Value)
		}
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if _, ok := keys["resourceLogs"]; ok {
		logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		if err != nil {
			return nil, fmt.Errorf("OTLP/JSON logs: %v", err)
		}
		var evs []rules.Event
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					ev := rules.EventFromRecord(lr, rl.Resource().Attributes())
					if lr.Timestamp() == 0 && lr.ObservedTimestamp() == 0 {
						ev.Time = now
					}
					evs = append(evs, ev)
				}
			}
		}
		return evs, nil
	}

	var fe flatEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fe); err != nil {
		return nil, fmt.Errorf("event: %v (want resourceLogs, or event_name, time, attributes, resource)", err)
	}
	if fe.EventName == "" {
		return nil, errors.New("event: event_name is required")
	}
	ev := rules.Event{Name: fe.EventName, Attrs: pcommon.NewMap(), Resource: pcommon.NewMap(), Time: now}
	if fe.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, fe.Time)
		if err != nil {
			return nil, fmt.Errorf("event: time %q is not RFC 3339 (2006-01-02T15:04:05Z)", fe.Time)
		}
		ev.Time = t
	}
	if err := ev.Attrs.FromRaw(numbers(fe.Attributes).(map[string]any)); err != nil {
		return nil, fmt.Errorf("event: attributes: %v", err)
	}
	if err := ev.Resource.FromRaw(numbers(fe.Resource).(map[string]any)); err != nil {
		return nil, fmt.Errorf("event: resource: %v", err)
	}
	return []rules.Event{ev}, nil
}

// numbers turns the json.Numbers of a decoded value into int64 when they are
// integers and float64 otherwise, as pcommon expects them.
func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
		return v
	}
	return v
}
