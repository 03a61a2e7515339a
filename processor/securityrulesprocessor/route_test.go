package securityrulesprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

func tierCfg(tier, mode string) *Config {
	cfg := testCfg(mode, "testdata/tier_rules.yaml")
	cfg.Tier = tier
	return cfg
}

// audit is one audit event: status, user, client address, verb and the pod
// it acts on (subresource exec when exec).
func audit(lrs plog.LogRecordSlice, status int64, user, client, verb string, exec bool) {
	lr := lrs.AppendEmpty()
	lr.SetEventName("k8s.audit")
	lr.SetTimestamp(pcommon.Timestamp(1e18))
	a := lr.Attributes()
	a.PutInt("http.response.status_code", status)
	a.PutStr("user.name", user)
	a.PutStr("client.address", client)
	a.PutStr("k8s.audit.verb", verb)
	a.PutStr("k8s.namespace.name", "shop")
	a.PutStr("k8s.pod.name", "web")
	if exec {
		a.PutStr("k8s.audit.object.subresource", "exec")
	}
}

// shellIn is a process.exec of sh with the pod on the resource, as the ebpf
// receiver sends it.
func shellIn(ns, pod string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", ns)
	rl.Resource().Attributes().PutStr("k8s.pod.name", pod)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("process.exec")
	lr.SetTimestamp(pcommon.Timestamp(1e18 + 1e9))
	lr.Attributes().PutStr("process.executable.name", "sh")
	return ld
}

type routed struct {
	family  string
	traceID pcommon.TraceID
	lr      plog.LogRecord
}

func routedCopies(sink *consumertest.LogsSink) []routed {
	var out []routed
	for _, ld := range sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, routed{attr(lr, rules.AttrRoutingKeyBy).(string), lr.TraceID(), lr})
				}
			}
		}
	}
	return out
}

func TestRouteSendsOneCopyPerKeyFamily(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), tierCfg(TierRoute, ModeBoth), sink)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	audit(lrs, 201, "alice", "10.0.0.1", "create", false) // stateless rules only: not sent
	audit(lrs, 401, "", "10.0.0.1", "create", true)       // a 401 exec: client.address and the pod
	audit(lrs, 401, "", "", "get", false)                 // no client address: no key to count it by
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	require.NoError(t, p.ConsumeLogs(context.Background(), shellIn("shop", "web")))

	copies := routedCopies(sink)
	require.Len(t, copies, 3)
	assert.Equal(t, "client.address", copies[0].family)
	assert.Equal(t, "k8s.namespace.name,k8s.pod.name", copies[1].family)
	assert.Equal(t, "k8s.namespace.name,k8s.pod.name", copies[2].family, "the shell")
	assert.Equal(t, copies[1].traceID, copies[2].traceID, "the exec and the shell in one pod go to one replica")
	assert.NotEqual(t, copies[0].traceID, copies[1].traceID)
	assert.Equal(t, rules.RoutingTraceID("client.address", "10.0.0.1"), copies[0].traceID, "the same key on every front replica")
	_, alerts := records(sink)
	assert.Empty(t, alerts, "the route tier raises nothing")
}

// The rules tier, fed the route tier's copies, counts each event once per
// family: three 401 execs cross the client.address threshold once and do not
// count for the user.name one, and the shell completes the pod's sequence.
func TestRulesTierCountsEachCopyForItsFamily(t *testing.T) {
	routedSink, alertSink := new(consumertest.LogsSink), new(consumertest.LogsSink)
	route := newTestProcessor(t, componenttest.NewTelemetry(), tierCfg(TierRoute, ModeBoth), routedSink)
	rulesTier := newTestProcessor(t, componenttest.NewTelemetry(), tierCfg(TierRules, ModeAlerts), alertSink)
	for range 3 {
		ld := plog.NewLogs()
		audit(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords(), 401, "bob", "10.0.0.1", "create", true)
		require.NoError(t, route.ConsumeLogs(context.Background(), ld))
	}
	require.NoError(t, route.ConsumeLogs(context.Background(), shellIn("shop", "web")))
	for _, ld := range routedSink.AllLogs() {
		require.NoError(t, rulesTier.ConsumeLogs(context.Background(), ld))
	}
	// The events share one time: the reorder buffer holds them until the
	// stream moves on, or, as here, until shutdown lets go of them.
	require.NoError(t, rulesTier.Shutdown(context.Background()))
	_, alerts := records(alertSink)
	var got []string
	for _, a := range alerts {
		got = append(got, attr(a, "security_rule.name").(string))
		assert.Nil(t, attr(a, rules.AttrRoutingKeyBy), "the routing family is plumbing, not evidence")
	}
	assert.ElementsMatch(t, []string{"Failed logins from one address", "Exec then shell"}, got)
}

func TestFrontTierRunsOnlyStatelessRules(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), tierCfg(TierFront, ModeBoth), sink)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range 3 {
		audit(lrs, 401, "bob", "10.0.0.1", "create", true)
	}
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	events, alerts := records(sink)
	assert.Len(t, events, 3, "the events go on, annotated")
	require.Len(t, alerts, 3)
	for _, a := range alerts {
		assert.Equal(t, "Pod created", attr(a, "security_rule.name"))
	}
}
