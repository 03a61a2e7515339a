package securityrulesprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// An event annotated upstream (the node agent's security_rules) keeps the
// rules that matched there; the gateway's are added, each rule once.
func TestAnnotateKeepsUpstreamMatches(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), testCfg(ModeAnnotate, "testdata/rules.yaml"), sink)
	ld := auditBatch()
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	// The secret read: upstream matched another rule, and this one too.
	s := lrs.At(0).Attributes().PutEmptySlice("security_rule.matched")
	s.AppendEmpty().SetStr("Agent rule")
	s.AppendEmpty().SetStr("Secret read")
	// A second secret read, annotated upstream with one name as a string.
	lrs.At(0).CopyTo(lrs.AppendEmpty())
	lrs.At(2).Attributes().PutStr("security_rule.matched", "Agent rule")
	// The pod list matches nothing here: its upstream match stays as it was.
	lrs.At(1).Attributes().PutEmptySlice("security_rule.matched").AppendEmpty().SetStr("Agent rule")

	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	events, _ := records(sink)
	require.Len(t, events, 3)
	assert.Equal(t, []any{"Agent rule", "Secret read"}, attr(events[0], "security_rule.matched"))
	assert.Equal(t, []any{"Agent rule"}, attr(events[1], "security_rule.matched"))
	assert.Equal(t, []any{"Agent rule", "Secret read"}, attr(events[2], "security_rule.matched"))
}
