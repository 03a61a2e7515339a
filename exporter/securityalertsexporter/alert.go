package securityalertsexporter

import (
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// Pseudo-attributes: what an alert carries outside its attribute map, under
// names that label mappings and templates can use.
const (
	attrSeverity = "severity"
	attrTime     = "time"
	attrOutput   = "output"
)

// Alert is one security.alert record, read once into plain fields so that
// every format renders from the same data. A record missing attributes
// gives empty fields, never an error: an alert must still reach a person.
type Alert struct {
	Time        time.Time
	Rule        string
	RuleID      string
	Ruleset     string
	Category    string
	Description string
	Reference   string
	Severity    string // the rule's: info, low, medium, high, critical
	Output      string
	EventName   string // the event that raised it
	Count       int64
	Throttled   bool
	Tags        []string
	Tactics     []string
	Techniques  []string
	// EvidenceIDs name the events behind the alert (audit IDs, exec IDs,
	// request IDs), from the record and its sequence's evidence steps.
	EvidenceIDs []string
	// GroupCount is, on a grouped chat message, how many alerts of its group
	// were folded into it since the group's last message; 0 otherwise.
	GroupCount int64
	// Attrs are the resource's attributes overlaid with the record's (the
	// record wins, as rules read them), scalars only, typed.
	Attrs map[string]any

	// res and lr are where the alert was read from, to hand back what was
	// not sent when a request fails.
	res      pcommon.Resource
	lr       plog.LogRecord
	admitted bool // handed back for a retry: grouping already let it through
}

// isAlert tells an alert record from any other the pipeline carries.
func isAlert(lr plog.LogRecord) bool { return lr.EventName() == rules.AlertEventName }

// readAlert reads lr, under resource res, into an Alert.
func readAlert(res pcommon.Resource, lr plog.LogRecord) Alert {
	attrs := make(map[string]any, res.Attributes().Len()+lr.Attributes().Len())
	putScalars(attrs, res.Attributes())
	putScalars(attrs, lr.Attributes())
	a := Alert{
		Time:        lr.Timestamp().AsTime().UTC(),
		Rule:        str(attrs, rules.AttrRuleName),
		RuleID:      str(attrs, rules.AttrRuleUUID),
		Ruleset:     str(attrs, rules.AttrRulesetName),
		Category:    str(attrs, rules.AttrRuleCategory),
		Description: str(attrs, rules.AttrRuleDesc),
		Reference:   str(attrs, rules.AttrRuleReference),
		Severity:    lr.SeverityText(),
		Output:      lr.Body().AsString(),
		EventName:   str(attrs, rules.AttrEventName),
		Tags:        strs(lr.Attributes(), rules.AttrRuleTags),
		Tactics:     strs(lr.Attributes(), rules.AttrMitreTactics),
		Techniques:  strs(lr.Attributes(), rules.AttrMitreTechnique),
		Attrs:       attrs,
		res:         res,
		lr:          lr,
	}
	if lr.Timestamp() == 0 {
		a.Time = lr.ObservedTimestamp().AsTime().UTC()
	}
	if n, ok := attrs[rules.AttrCount].(int64); ok {
		a.Count = n
	}
	a.Throttled, _ = attrs[rules.AttrSummary].(bool)
	a.EvidenceIDs = evidenceIDs(lr.Attributes())
	if n, ok := attrs[attrGroupCount].(int64); ok && n > 0 {
		a.GroupCount = n
	}
	_, a.admitted = attrs[attrAdmitted]
	delete(attrs, attrGroupCount) // ours, not the event's
	delete(attrs, attrAdmitted)
	if a.Severity == "" {
		a.Severity = severityFromNumber(lr.SeverityNumber())
	}
	return a
}

// Attr returns the named attribute or pseudo-attribute as a string ("" when
// absent), for labels and grouping keys.
func (a *Alert) Attr(name string) string {
	switch name {
	case attrSeverity:
		return a.Severity
	case attrOutput:
		return a.Output
	case attrTime:
		return a.Time.Format(time.RFC3339Nano)
	}
	v, ok := a.Attrs[name]
	if !ok {
		return ""
	}
	return pcommonString(v)
}

// severityFromNumber recovers the rule severity from an OTel severity number
// when the text is missing (the inverse of rules' mapping).
func severityFromNumber(n plog.SeverityNumber) string {
	switch {
	case n >= plog.SeverityNumberFatal:
		return "critical"
	case n >= plog.SeverityNumberError:
		return "high"
	case n >= plog.SeverityNumberWarn2:
		return "medium"
	case n >= plog.SeverityNumberWarn:
		return "low"
	case n > 0:
		return "info"
	}
	return ""
}

func putScalars(dst map[string]any, src pcommon.Map) {
	for k, v := range src.All() {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			dst[k] = v.Str()
		case pcommon.ValueTypeInt:
			dst[k] = v.Int()
		case pcommon.ValueTypeDouble:
			dst[k] = v.Double()
		case pcommon.ValueTypeBool:
			dst[k] = v.Bool()
		case pcommon.ValueTypeSlice:
			// Lists of scalars (command args, groups) stay lists; maps and
			// the evidence steps are not flat and are read on their own.
			if s, ok := scalarList(v.Slice()); ok {
				dst[k] = s
			}
		}
	}
}

func scalarList(s pcommon.Slice) ([]any, bool) {
	out := make([]any, 0, s.Len())
	for i := range s.Len() {
		v := s.At(i)
		switch v.Type() {
		case pcommon.ValueTypeMap, pcommon.ValueTypeSlice, pcommon.ValueTypeBytes:
			return nil, false
		}
		out = append(out, v.AsRaw())
	}
	return out, true
}

func str(attrs map[string]any, k string) string {
	s, _ := attrs[k].(string)
	return s
}

func strs(m pcommon.Map, k string) []string {
	v, ok := m.Get(k)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	out := make([]string, 0, v.Slice().Len())
	for i := range v.Slice().Len() {
		out = append(out, v.Slice().At(i).AsString())
	}
	return out
}

// pcommonString formats a scalar attribute value as OTel would.
func pcommonString(v any) string {
	val := pcommon.NewValueEmpty()
	if err := val.FromRaw(v); err != nil {
		return ""
	}
	return val.AsString()
}

// idAttrs identify one event each: the IDs a responder looks up.
var idAttrs = []string{"k8s.audit.id", "k8ssec.process.exec_id", "k8ssec.http.request.id", "k8s.event.uid"}

func evidenceIDs(attrs pcommon.Map) []string {
	var ids []string
	add := func(m pcommon.Map) {
		for _, k := range idAttrs {
			if v, ok := m.Get(k); ok && v.AsString() != "" && !slices.Contains(ids, v.AsString()) {
				ids = append(ids, v.AsString())
			}
		}
	}
	add(attrs)
	if steps, ok := attrs.Get(rules.AttrEvidence); ok && steps.Type() == pcommon.ValueTypeSlice {
		for i := range steps.Slice().Len() {
			step := steps.Slice().At(i)
			if step.Type() != pcommon.ValueTypeMap {
				continue
			}
			if sa, ok := step.Map().Get("attributes"); ok && sa.Type() == pcommon.ValueTypeMap {
				add(sa.Map())
			}
		}
	}
	return ids
}
