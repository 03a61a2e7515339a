package securityrulesprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// What an alert says of its rule's action.
const (
	attrResponseAction    = "k8ssec.response.action"     // kill
	attrResponseResult    = "k8ssec.response.result"     // a response.Result
	attrResponseLatency   = "k8ssec.response.latency"    // seconds from the event to the signal (double)
	attrResponseTargetPid = "k8ssec.response.target_pid" // the pid acted on
	attrResponseError     = "k8ssec.response.error"      // why, for result error

	attrPid       = "process.pid"
	attrStartTime = "k8ssec.process.start_time"
)

// actionOutcome is what was done for one event: an event that matches two
// kill rules is killed once, and both alerts say so.
type actionOutcome struct {
	done    bool
	target  response.Target
	outcome response.Outcome
}

// respond carries out (or, in dry_run, checks) a kill rule's action on the
// process of ev, once per event. Without a Killer in this collector (a
// gateway: its pids are other nodes') the action is unavailable.
func (p *rulesProcessor) respond(ctx context.Context, rule *rules.Rule, ev *rules.Event, done *actionOutcome) {
	if done.done {
		return
	}
	done.done = true
	done.target = targetOf(ev)
	killer := response.Lookup()
	switch {
	case killer == nil:
		done.outcome = response.Outcome{Result: response.Unavailable}
	case done.target.Pid <= 0 || done.target.StartTime <= 0:
		done.outcome = response.Outcome{Result: response.Error, Err: errNoTarget}
	default:
		done.outcome = killer.Kill(done.target, p.cfg.Response.Mode == ResponseDryRun)
	}
	p.telemetry.ProcessorSecurityRulesResponses.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String(attrResponseAction, rules.ActionKill), attribute.String(attrResponseResult, string(done.outcome.Result)))))
	switch done.outcome.Result {
	case response.Killed: // the alert says it too, but it may be queued far from here
		p.set.Logger.Info("Killed a process (action: kill)", zap.String("rule", rule.Name), zap.Int("pid", done.target.Pid))
	case response.Error:
		p.set.Logger.Warn("A kill failed (action: kill)", zap.String("rule", rule.Name), zap.Int("pid", done.target.Pid), zap.Error(done.outcome.Err))
	}
}

var errNoTarget = errors.New("the event names no process: it lacks " + attrPid + " or " + attrStartTime)

// targetOf is the process an event names: the ebpf receiver puts its pid and
// start time on the resource.
func targetOf(ev *rules.Event) response.Target {
	var t response.Target
	if v, ok := ev.Get(attrPid); ok && v.Type() == pcommon.ValueTypeInt {
		t.Pid = int(v.Int())
	}
	if v, ok := ev.Get(attrStartTime); ok && v.Type() == pcommon.ValueTypeInt {
		t.StartTime = v.Int()
	}
	return t
}

// writeResponse adds to an alert what was done, and how long after the
// event (for killed, and dry_run's would-be signal).
func writeResponse(attrs pcommon.Map, ev *rules.Event, done *actionOutcome) {
	attrs.PutStr(attrResponseAction, rules.ActionKill)
	attrs.PutStr(attrResponseResult, string(done.outcome.Result))
	if done.target.Pid > 0 {
		attrs.PutInt(attrResponseTargetPid, int64(done.target.Pid))
	}
	if !done.outcome.At.IsZero() {
		attrs.PutDouble(attrResponseLatency, done.outcome.At.Sub(ev.Time).Seconds())
	}
	if done.outcome.Err != nil {
		attrs.PutStr(attrResponseError, done.outcome.Err.Error())
	}
}
