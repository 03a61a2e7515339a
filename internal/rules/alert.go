package rules

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// AlertEventName is the EventName of every alert.
const AlertEventName = "security.alert"

// Alert attribute names.
const (
	AttrRuleName       = "security_rule.name"
	AttrRuleUUID       = "security_rule.uuid"
	AttrRuleCategory   = "security_rule.category"
	AttrRuleDesc       = "security_rule.description"
	AttrRuleReference  = "security_rule.reference"
	AttrRulesetName    = "security_rule.ruleset.name"
	AttrRuleVersion    = "security_rule.version"
	AttrRuleTags       = "security_rule.tags"
	AttrMitreTactics   = "security_rule.mitre.tactics"
	AttrMitreTechnique = "security_rule.mitre.techniques"
	AttrEventName      = "security_rule.event.name"
	AttrCount          = "security_rule.count"
	AttrSummary        = "security_rule.throttled"
	AttrEvidence       = "security_rule.evidence"
	AttrMatched        = "security_rule.matched" // on annotated events: names of the rules they matched
)

var severityNumbers = []plog.SeverityNumber{
	SeverityInfo:     plog.SeverityNumberInfo,
	SeverityLow:      plog.SeverityNumberWarn,
	SeverityMedium:   plog.SeverityNumberWarn2,
	SeverityHigh:     plog.SeverityNumberError,
	SeverityCritical: plog.SeverityNumberFatal,
}

// SeverityNumber is the OTel severity of a rule severity.
func (s Severity) SeverityNumber() plog.SeverityNumber { return severityNumbers[s] }

// WriteAlert fills lr with the alert for m, raised by ev (nil for a throttle
// summary flushed without an event). The event's non-map attributes come first,
// so that the alert can be traced to its evidence (an audit ID, a pid), then the
// rule's.
func (m *Match) WriteAlert(ev *Event, lr plog.LogRecord, now time.Time) {
	r := m.Rule
	lr.SetEventName(AlertEventName)
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetSeverityNumber(r.Severity.SeverityNumber())
	lr.SetSeverityText(r.Severity.String())
	attrs := lr.Attributes()
	if ev != nil && !m.Summary {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(ev.Time))
		attrs.EnsureCapacity(ev.Attrs.Len() + 12)
		copyScalars(ev.Attrs, attrs)
		attrs.PutStr(AttrEventName, ev.Name)
		lr.Body().SetStr(r.output.render(ev, m.Evidence))
	} else {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.Body().SetStr(strconv.Itoa(m.Count) + " more matches of " + strconv.Quote(r.Name) + " were throttled")
		attrs.PutBool(AttrSummary, true)
	}
	attrs.PutStr(AttrRuleName, r.Name)
	putNonEmpty(attrs, AttrRuleUUID, r.ID)
	putNonEmpty(attrs, AttrRuleCategory, r.Category)
	putNonEmpty(attrs, AttrRuleDesc, r.Description)
	putNonEmpty(attrs, AttrRuleReference, r.Reference)
	putNonEmpty(attrs, AttrRulesetName, r.Ruleset.Name)
	putNonEmpty(attrs, AttrRuleVersion, r.Ruleset.Version)
	putStrings(attrs, AttrRuleTags, r.Tags)
	putStrings(attrs, AttrMitreTactics, r.Tactics)
	putStrings(attrs, AttrMitreTechnique, r.Techniques)
	attrs.PutInt(AttrCount, int64(m.Count))
	// The key of a stateful rule, by attribute name, also for summaries.
	for i, name := range m.keyNames() {
		if i < len(m.Key) {
			attrs.PutStr(name, m.Key[i])
		}
	}
	if len(m.Evidence) > 0 {
		steps := attrs.PutEmptySlice(AttrEvidence)
		for _, e := range m.Evidence {
			step := steps.AppendEmpty().SetEmptyMap()
			step.PutStr("step", e.Step)
			step.PutStr("event.name", e.EventName)
			step.PutStr("time", e.Time.UTC().Format(time.RFC3339Nano))
			e.Attrs.CopyTo(step.PutEmptyMap("attributes"))
		}
	}
}

func (m *Match) keyNames() []string {
	switch r := m.Rule; {
	case r.Threshold != nil:
		return r.Threshold.By
	case r.Throttle != nil:
		return r.Throttle.By
	case r.Sequence != nil:
		return r.Sequence.By
	}
	return nil
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putStrings(m pcommon.Map, k string, vals []string) {
	if len(vals) == 0 {
		return
	}
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(vals))
	for _, v := range vals {
		s.AppendEmpty().SetStr(v)
	}
}
