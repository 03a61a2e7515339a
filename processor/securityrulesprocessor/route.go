package securityrulesprocessor

import (
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// tier: route. The loadbalancing exporter (contrib, v0.145.0) routes logs by
// the trace ID of each record and ignores routing_key for logs, and one event
// may feed rules of several keys (a 401 pods/exec: a threshold by
// client.address and a sequence by pod). So the front tier sends one copy of
// the event per key family, its trace ID a hash of family and key: every copy
// of one key reaches the same rules-tier replica, and the copy says its family
// (rules.AttrRoutingKeyBy) so that the replica counts it for that family only.
// Events that feed no stateful rule are not sent at all.

// routeByKey returns the keyed copies of ld's events. The records' own trace
// IDs are overwritten on the copies (security events carry none).
func routeByKey(engine *rules.Engine, ld plog.Logs) plog.Logs {
	out := plog.NewLogs()
	var ev rules.Event
	var keyed []*rules.Rule
	seen := map[string]bool{}
	for _, rl := range ld.ResourceLogs().All() {
		resource := rl.Resource().Attributes()
		resourceID := rules.NewResourceID()
		var outRL plog.ResourceLogs
		for _, sl := range rl.ScopeLogs().All() {
			var outRecords plog.LogRecordSlice
			for _, lr := range sl.LogRecords().All() {
				ev = rules.EventFromRecord(lr, resource)
				ev.ResourceID = resourceID
				keyed = engine.Keyed(&ev, keyed[:0])
				clear(seen)
				for _, r := range keyed {
					family := r.KeyFamily()
					if seen[family] {
						continue
					}
					seen[family] = true
					k, ok := rules.KeyOf(&ev, r.StateBy())
					if !ok {
						continue // no key: the rule cannot count it anywhere
					}
					if outRecords == (plog.LogRecordSlice{}) {
						if outRL == (plog.ResourceLogs{}) {
							outRL = out.ResourceLogs().AppendEmpty()
							rl.Resource().CopyTo(outRL.Resource())
							outRL.SetSchemaUrl(rl.SchemaUrl())
						}
						outSL := outRL.ScopeLogs().AppendEmpty()
						sl.Scope().CopyTo(outSL.Scope())
						outSL.SetSchemaUrl(sl.SchemaUrl())
						outRecords = outSL.LogRecords()
					}
					c := outRecords.AppendEmpty()
					lr.CopyTo(c)
					c.SetTraceID(rules.RoutingTraceID(family, k))
					c.Attributes().PutStr(rules.AttrRoutingKeyBy, family)
				}
			}
		}
	}
	return out
}

// takeKeyBy removes a routed copy's family from the record (the alerts copy
// the event's attributes, and it is plumbing) and returns it.
func takeKeyBy(lr plog.LogRecord) string {
	v, ok := lr.Attributes().Get(rules.AttrRoutingKeyBy)
	if !ok {
		return ""
	}
	family := v.AsString()
	lr.Attributes().Remove(rules.AttrRoutingKeyBy)
	return family
}
