package securityrulesprocessor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadata"
)

// rulesProcessor evaluates every log record against the rules and emits alerts
// beside (or instead of) the events.
type rulesProcessor struct {
	cfg       *Config
	set       processor.Settings
	next      consumer.Logs
	telemetry *metadata.TelemetryBuilder

	running  atomic.Pointer[running] // swapped whole on reload
	stamps   string                  // rule files' size and mtime at the last load
	pending  string                  // stamps seen changed once, loaded when seen again
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// running is one loaded rule set with its engine and what of its counters the
// self-metrics have reported so far.
type running struct {
	engine            *rules.Engine
	reportedMatches   []atomic.Int64 // per rule index
	reportedErrors    atomic.Int64
	reportedEvaluated atomic.Int64
	reportedDropped   atomic.Int64
	reportedLate      atomic.Int64
	reportedOverflow  atomic.Int64
	ruleAttrs         []metric.MeasurementOption // per rule index
}

func newRunning(set *rules.Set, cfg *Config) *running {
	window := cfg.ReorderWindow
	if cfg.Mode == ModeAnnotate {
		// Only the event in hand can be marked: a match the buffer releases
		// later would have nowhere to go.
		window = 0
	}
	r := &running{
		engine: rules.NewEngine(set, rules.StateConfig{MaxKeys: cfg.State.MaxKeys,
			ReorderWindow: window, MaxHeld: cfg.State.MaxHeldEvents}),
		reportedMatches: make([]atomic.Int64, len(set.Rules)),
		ruleAttrs:       make([]metric.MeasurementOption, len(set.Rules)),
	}
	for i, rule := range set.Rules {
		r.ruleAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("security_rule.name", rule.Name)))
	}
	return r
}

func newRulesProcessor(set processor.Settings, cfg *Config, next consumer.Logs) (*rulesProcessor, error) {
	ruleSet, err := cfg.load()
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &rulesProcessor{cfg: cfg, set: set, next: next, telemetry: tb, stamps: cfg.fileStamps(), stop: make(chan struct{})}
	p.running.Store(newRunning(ruleSet, cfg))
	set.Logger.Info("Security rules loaded", zap.Int("rules", len(ruleSet.Rules)), zap.Strings("from", cfg.Rules), zap.String("mode", cfg.Mode))
	logWarnings(set.Logger, ruleSet)
	if ruleSet.HasAction(rules.ActionKill) {
		set.Logger.Info("Rules with action: kill are loaded", zap.String("response.mode", cfg.Response.Mode))
	}
	return p, nil
}

func (p *rulesProcessor) start(context.Context, component.Host) error {
	if p.cfg.Mode != ModeAnnotate && p.cfg.Tier != TierRoute {
		p.every(p.cfg.FlushInterval, p.flush)
		if p.cfg.ReorderWindow > 0 { // annotate mode holds nothing
			p.every(max(p.cfg.ReorderWindow/10, 10*time.Millisecond), p.releaseQuiet)
		}
	}
	if p.cfg.ReloadInterval > 0 {
		p.every(p.cfg.ReloadInterval, p.reloadIfChanged)
	}
	return nil
}

// shutdown runs once, however often it is called. What is still throttled
// is sent: the collector stops a processor before what it feeds.
func (p *rulesProcessor) shutdown(context.Context) error {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		run := p.running.Load()
		p.sendSummaries(run, run.engine.Drain())
		p.telemetry.Shutdown()
	})
	return nil
}

func (p *rulesProcessor) every(d time.Duration, f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// matchesPool holds the per-batch match buffers.
var matchesPool = sync.Pool{New: func() any { s := make([]rules.Match, 0, 8); return &s }}

func (p *rulesProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	run := p.running.Load()
	if p.cfg.Tier == TierRoute {
		return routeByKey(run.engine, ld), nil
	}
	now := time.Now()
	annotate := p.cfg.Mode != ModeAlerts
	emit := p.cfg.Mode != ModeAnnotate
	alerts := plog.NewLogs()
	buf := matchesPool.Get().(*[]rules.Match)
	defer matchesPool.Put(buf)

	var ev rules.Event // one for the batch: an event per record would be an allocation each
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		resource := rl.Resource().Attributes()
		resourceID := rules.NewResourceID() // its attributes are indexed once for all its records
		var out plog.LogRecordSlice         // this resource's alerts, made on the first
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				ev = rules.EventFromRecord(lr, resource)
				ev.ResourceID = resourceID
				if p.cfg.Tier == TierRules {
					ev.KeyBy = takeKeyBy(lr)
				}
				if lr.Timestamp() == 0 && lr.ObservedTimestamp() == 0 {
					ev.Time = now // no time of its own: its arrival, not 1970, which would be late
				}
				*buf = run.engine.Evaluate(&ev, (*buf)[:0])
				if len(*buf) == 0 {
					continue
				}
				if annotate {
					annotateEvent(lr, *buf)
				}
				if !emit {
					continue
				}
				var action actionOutcome // one per event: every kill rule's alert reports the one kill
				for m := range *buf {
					match := &(*buf)[m]
					var dst plog.LogRecordSlice
					switch {
					case match.Summary || match.Event != nil: // about earlier events, maybe of another resource
						dst = p.summaryAlerts(alerts, match)
					default:
						if out == (plog.LogRecordSlice{}) {
							out = p.newAlertResource(alerts, rl.Resource())
						}
						dst = out
					}
					p.writeAlert(ctx, run, match, &ev, &action, dst.AppendEmpty(), now)
				}
			}
		}
	}
	p.reportStats(ctx, run)
	if !emit {
		return ld, nil
	}
	if !annotate {
		return alerts, nil // alerts only: the events stop here
	}
	alerts.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	return ld, nil
}

// writeAlert writes the alert of one match, raised by ev unless the match
// names its own event (released by the reorder buffer), and carries out the
// rule's action (once per event: action is the event's outcome so far).
func (p *rulesProcessor) writeAlert(ctx context.Context, run *running, match *rules.Match, ev *rules.Event, action *actionOutcome, alert plog.LogRecord, now time.Time) {
	if match.Event != nil {
		ev, action = match.Event, &actionOutcome{}
	}
	act := p.acts(match)
	if act {
		p.respond(ctx, match.Rule, ev, action) // before the alert is written: the process runs meanwhile
	}
	match.WriteAlert(ev, alert, now)
	if act {
		writeResponse(alert.Attributes(), ev, action)
	}
	p.telemetry.ProcessorSecurityRulesAlerts.Add(ctx, 1, run.ruleAttrs[match.Rule.Index()])
}

// acts reports whether a match's rule action is to be carried out (or
// checked, in dry_run): kill rules, unless response is off; never for a
// throttle summary, which stands for earlier events.
func (p *rulesProcessor) acts(m *rules.Match) bool {
	return m.Rule.Action == rules.ActionKill && !m.Summary && p.cfg.Response.Mode != ResponseOff
}

// newAlertResource starts the alerts of one resource: its attributes are the
// event's, so an alert says which pod, node or cluster it is about.
func (p *rulesProcessor) newAlertResource(alerts plog.Logs, resource pcommon.Resource) plog.LogRecordSlice {
	rl := alerts.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(p.set.BuildInfo.Version)
	return sl.LogRecords()
}

// summaryAlerts starts a throttle summary's resource: the one of the events
// it stands for.
func (p *rulesProcessor) summaryAlerts(alerts plog.Logs, m *rules.Match) plog.LogRecordSlice {
	res := pcommon.NewResource()
	if m.Resource != (pcommon.Map{}) {
		m.Resource.CopyTo(res.Attributes())
	}
	return p.newAlertResource(alerts, res)
}

// annotateEvent adds the rules that alerted on an event to
// security_rule.matched, after the ones an upstream processor (the node
// agent's) listed there; each name once. Matches the reorder buffer released
// are about events already passed on: they are not this event's.
func annotateEvent(lr plog.LogRecord, ms []rules.Match) {
	attrs := lr.Attributes()
	var matched pcommon.Slice
	v, ok := attrs.Get(rules.AttrMatched)
	switch {
	case ok && v.Type() == pcommon.ValueTypeSlice:
		matched = v.Slice()
	case ok && v.AsString() != "": // one name, as a string
		upstream := v.AsString()
		matched = attrs.PutEmptySlice(rules.AttrMatched)
		matched.AppendEmpty().SetStr(upstream)
	default:
		matched = attrs.PutEmptySlice(rules.AttrMatched)
	}
	for _, m := range ms {
		if m.Event == nil && !hasStr(matched, m.Rule.Name) {
			matched.AppendEmpty().SetStr(m.Rule.Name)
		}
	}
}

// hasStr reports whether s holds the string v; s is a few rule names.
func hasStr(s pcommon.Slice, v string) bool {
	for i := 0; i < s.Len(); i++ {
		if e := s.At(i); e.Type() == pcommon.ValueTypeStr && e.Str() == v {
			return true
		}
	}
	return false
}

// reportStats adds to the self-metrics what the engine counted since the last
// report. The engine's counters are cumulative; Swap makes each delta reported
// once even with batches processed concurrently.
func (p *rulesProcessor) reportStats(ctx context.Context, run *running) {
	st := run.engine.Stats()
	if d := st.Errors.Load() - run.reportedErrors.Swap(st.Errors.Load()); d > 0 {
		p.telemetry.ProcessorSecurityRulesEvaluationErrors.Add(ctx, d)
	}
	if d := st.DroppedState.Load() - run.reportedDropped.Swap(st.DroppedState.Load()); d > 0 {
		p.telemetry.ProcessorSecurityRulesDroppedState.Add(ctx, d)
	}
	if d := st.Late.Load() - run.reportedLate.Swap(st.Late.Load()); d > 0 {
		p.telemetry.ProcessorSecurityRulesLateEvents.Add(ctx, d)
	}
	if d := st.ReorderOverflow.Load() - run.reportedOverflow.Swap(st.ReorderOverflow.Load()); d > 0 {
		p.telemetry.ProcessorSecurityRulesReorderOverflows.Add(ctx, d)
	}
	if n := st.Evaluated.Load() - run.reportedEvaluated.Swap(st.Evaluated.Load()); n > 0 {
		p.telemetry.ProcessorSecurityRulesEventsEvaluated.Add(ctx, n)
	}
	for i, r := range run.engine.Set().Rules {
		cur := run.engine.RuleMatches(r)
		if d := cur - run.reportedMatches[i].Swap(cur); d > 0 {
			p.telemetry.ProcessorSecurityRulesMatches.Add(ctx, d, run.ruleAttrs[i])
		}
	}
}

// flush sends the summaries of throttling periods that have ended, and the
// alerts of events a quiet stream let out of the reorder buffer.
func (p *rulesProcessor) flush() {
	run := p.running.Load()
	p.sendSummaries(run, run.engine.Flush(time.Now()))
	p.reportStats(context.Background(), run)
}

// releaseQuiet sends the alerts of held events a quiet stream let go.
func (p *rulesProcessor) releaseQuiet() {
	run := p.running.Load()
	p.sendSummaries(run, run.engine.ReleaseQuiet(time.Now()))
}

// sendSummaries sends alerts that no batch carries (throttle summaries, held
// events' matches) on their own; none in annotate mode, which sends no alerts.
func (p *rulesProcessor) sendSummaries(run *running, ms []rules.Match) {
	if len(ms) == 0 || p.cfg.Mode == ModeAnnotate {
		return
	}
	now := time.Now()
	alerts := plog.NewLogs()
	ctx := context.Background()
	for i := range ms {
		p.writeAlert(ctx, run, &ms[i], nil, &actionOutcome{}, p.summaryAlerts(alerts, &ms[i]).AppendEmpty(), now)
	}
	if err := p.next.ConsumeLogs(ctx, alerts); err != nil {
		p.set.Logger.Error("Could not send throttling summaries", zap.Int("alerts", len(ms)), zap.Error(err))
	}
}

// reloadIfChanged reloads the rules when a rule file changed and then stayed
// the same for one more interval: an editor or a ConfigMap update that
// truncates a file before writing it must not load the empty file in between.
// A reload that fails validation keeps the running rules and says why; state
// starts afresh with new rules, and what the old ones throttled is reported.
func (p *rulesProcessor) reloadIfChanged() {
	stamps := p.cfg.fileStamps()
	if stamps == p.stamps {
		p.pending = ""
		return
	}
	if stamps != p.pending {
		p.pending = stamps // changed: wait until it settles
		return
	}
	p.stamps, p.pending = stamps, ""
	ctx := context.Background()
	set, err := p.cfg.load()
	if err != nil {
		p.set.Logger.Error("Rule files changed but do not load; the running rules stay", zap.Error(err))
		p.telemetry.ProcessorSecurityRulesReloads.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "failure"))))
		return
	}
	old := p.running.Swap(newRunning(set, p.cfg))
	p.sendSummaries(old, old.engine.Drain())
	p.set.Logger.Info("Security rules reloaded", zap.Int("rules", len(set.Rules)))
	logWarnings(p.set.Logger, set)
	p.telemetry.ProcessorSecurityRulesReloads.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "success"))))
}

// logWarnings logs what loading the rules found questionable: names the
// vocabulary does not know (a typo reads as an absent attribute).
func logWarnings(logger *zap.Logger, set *rules.Set) {
	for _, w := range set.Warnings {
		logger.Warn("Rule reads an attribute the vocabulary does not know", zap.String("where", w.String()))
	}
}
