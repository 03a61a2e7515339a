package securityrulesprocessor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor/internal/metadatatest"
)

// The correlation pack's exec -> shell -> connect (K8SC-0001), in pod shop/web-1,
// as the k8s_audit receiver and the node agent's ebpf receiver send it.
var seqStart = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// podsExec is the apiserver's audit event of `kubectl exec` into shop/web-1:
// the pod is named on the record, the resource is empty.
func podsExec(at time.Duration) plog.Logs { return podsExecIn("web-1", at) }

func podsExecIn(pod string, at time.Duration) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("k8s.audit")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(seqStart.Add(at)))
	a := lr.Attributes()
	a.PutStr("k8s.audit.id", "exec-1")
	a.PutStr("k8s.audit.verb", "create")
	a.PutStr("k8s.audit.object.resource", "pods")
	a.PutStr("k8s.audit.object.subresource", "exec")
	a.PutStr("k8s.namespace.name", "shop")
	a.PutStr("k8s.pod.name", pod)
	a.PutStr("user.name", "mallory")
	a.PutInt("http.response.status_code", 101)
	return ld
}

// auditTraffic is the rest of the apiserver's stream: a pod list at `at`,
// which moves event time on and matches no sequence step.
func auditTraffic(at time.Duration) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName("k8s.audit")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(seqStart.Add(at)))
	lr.Attributes().PutStr("k8s.audit.verb", "list")
	lr.Attributes().PutStr("k8s.audit.object.resource", "pods")
	lr.Attributes().PutStr("user.name", "system:kube-scheduler")
	return ld
}

// kernelSteps is the agent's batch: bash started in the pod, then its
// connection out; the process and pod are on the resource.
func kernelSteps(shellAt, connectAt time.Duration) plog.Logs {
	return kernelStepsIn("web-1", shellAt, connectAt)
}

func kernelStepsIn(pod string, shellAt, connectAt time.Duration) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("k8s.namespace.name", "shop")
	res.PutStr("k8s.pod.name", pod)
	res.PutStr("k8s.node.name", "node-a")
	res.PutStr("container.id", "c0ffee")
	res.PutInt("process.pid", 4242)
	res.PutStr("process.executable.name", "bash")
	res.PutStr("process.executable.path", "/usr/bin/bash")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	shell := lrs.AppendEmpty()
	shell.SetEventName("process.exec")
	shell.SetTimestamp(pcommon.NewTimestampFromTime(seqStart.Add(shellAt)))
	shell.Attributes().PutStr("process.command_line", "bash")
	conn := lrs.AppendEmpty()
	conn.SetEventName("network.connect")
	conn.SetTimestamp(pcommon.NewTimestampFromTime(seqStart.Add(connectAt)))
	conn.Attributes().PutStr("server.address", "203.0.113.7")
	conn.Attributes().PutInt("server.port", 443)
	return ld
}

func consume(t *testing.T, p processor.Logs, lds ...plog.Logs) {
	t.Helper()
	for _, ld := range lds {
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	}
}

// alertsOf returns the alerts of one rule (by id) with their resources.
func alertsOf(sink *consumertest.LogsSink, id string) (out []plog.LogRecord, resources []map[string]any) {
	for _, ld := range sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.EventName() == "security.alert" && attr(lr, "security_rule.uuid") == id {
						out = append(out, lr)
						resources = append(resources, rl.Resource().Attributes().AsRaw())
					}
				}
			}
		}
	}
	return out, resources
}

func evidenceSteps(t *testing.T, alert plog.LogRecord) []string {
	t.Helper()
	v, ok := alert.Attributes().Get("security_rule.evidence")
	require.True(t, ok)
	var steps []string
	for _, s := range v.Slice().AsRaw() {
		steps = append(steps, s.(map[string]any)["step"].(string))
	}
	return steps
}

// Issue 15, test 3 at the processor: the apiserver's pods/exec audit event
// reaches the gateway 4 s (of the streams' event time) after the agent's
// shell and connect. The reorder window puts it back in front of them and
// the sequence fires once; delivered 30 s late, it is behind the window, the
// sequence does not fire and the event is counted as late.
func TestCorrelationOutOfOrder(t *testing.T) {
	t.Run("4s late", func(t *testing.T) {
		tt := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
		sink := new(consumertest.LogsSink)
		p := newTestProcessor(t, tt, testCfg(ModeAlerts, "correlation"), sink)
		consume(t, p, kernelSteps(time.Second, 2*time.Second), auditTraffic(4*time.Second), auditTraffic(6*time.Second),
			podsExec(0))
		a, _ := alertsOf(sink, "K8SC-0001")
		assert.Empty(t, a, "held until the watermark passes the steps")
		consume(t, p, auditTraffic(12*time.Second))

		a, res := alertsOf(sink, "K8SC-0001")
		require.Len(t, a, 1, "the sequence fires, once")
		assert.Equal(t, []string{"exec", "shell", "connect"}, evidenceSteps(t, a[0]))
		assert.Equal(t, "203.0.113.7", attr(a[0], "server.address"), "the alert is the connect's")
		assert.Equal(t, pcommon.NewTimestampFromTime(seqStart.Add(2*time.Second)), a[0].Timestamp())
		assert.Equal(t, "web-1", res[0]["k8s.pod.name"], "with the connecting process's resource")
		assert.Equal(t, int64(4242), res[0]["process.pid"])
		shell, _ := alertsOf(sink, "K8SC-0040")
		assert.Len(t, shell, 1, "exec then shell within 30s fires as well")

		_, err := tt.GetMetric("otelcol_processor_security_rules_late_events")
		assert.Error(t, err, "nothing was late")
	})

	t.Run("30s late", func(t *testing.T) {
		tt := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
		sink := new(consumertest.LogsSink)
		cfg := testCfg(ModeAlerts, "correlation")
		cfg.FlushInterval = time.Hour
		require.NoError(t, cfg.Validate())
		p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
		consume(t, p, kernelSteps(time.Second, 2*time.Second), auditTraffic(10*time.Second), auditTraffic(20*time.Second),
			auditTraffic(32*time.Second), podsExec(0))
		require.NoError(t, p.Shutdown(context.Background()), "shutdown releases whatever is still held")

		a, _ := alertsOf(sink, "K8SC-0001")
		assert.Empty(t, a, "the exec came after the window: the shell and connect were taken without it")
		metadatatest.AssertEqualProcessorSecurityRulesLateEvents(t, tt, []metricdata.DataPoint[int64]{{Value: 1}},
			metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	})
}

// A quiet stream does not keep a sequence waiting for traffic: held events
// are let go once the newest event time has stood still for the reorder
// window, checked every tenth of it (not every flush_interval).
func TestQuietStreamReleasesHeldEvents(t *testing.T) {
	cfg := testCfg(ModeAlerts, "correlation")
	cfg.ReorderWindow = 50 * time.Millisecond
	cfg.FlushInterval = time.Hour
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)
	consume(t, p, kernelSteps(20*time.Millisecond, 30*time.Millisecond), podsExec(0)) // within the 50ms window
	require.Eventually(t, func() bool { a, _ := alertsOf(sink, "K8SC-0001"); return len(a) == 1 }, 5*time.Second, 10*time.Millisecond)
	a, res := alertsOf(sink, "K8SC-0001")
	assert.Equal(t, []string{"exec", "shell", "connect"}, evidenceSteps(t, a[0]))
	assert.Equal(t, "web-1", res[0]["k8s.pod.name"])
}

// A rule reload does not lose held events: the old rules take them, in
// order, and their alerts are sent.
func TestReloadReleasesHeldEvents(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	data, err := os.ReadFile("../../rules/correlation.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	cfg := testCfg(ModeAlerts, file)
	cfg.ReloadInterval = 10 * time.Millisecond
	cfg.FlushInterval = time.Hour
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)
	consume(t, p, kernelSteps(time.Second, 2*time.Second), podsExec(0))
	a, _ := alertsOf(sink, "K8SC-0001")
	require.Empty(t, a, "held")

	require.NoError(t, os.WriteFile(file, append(data, "\n# edited\n"...), 0o600))
	require.Eventually(t, func() bool { a, _ := alertsOf(sink, "K8SC-0001"); return len(a) == 1 }, 5*time.Second, 10*time.Millisecond)
	a, _ = alertsOf(sink, "K8SC-0001")
	assert.Equal(t, []string{"exec", "shell", "connect"}, evidenceSteps(t, a[0]))
}

// Batches processed at once (the collector's concurrent consumers) share one
// reorder buffer: every pod's sequence fires exactly once, whichever batch
// brought which step, while the flush runs beside them.
func TestConcurrentBatchesFireOncePerPod(t *testing.T) {
	cfg := testCfg(ModeAlerts, "correlation")
	cfg.FlushInterval = time.Millisecond
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), cfg, sink)
	const pods = 40
	var wg sync.WaitGroup
	for i := range pods {
		pod := fmt.Sprint("web-", i)
		at := time.Duration(i) * 100 * time.Millisecond
		wg.Add(2)
		for _, ld := range []plog.Logs{kernelStepsIn(pod, at+time.Second, at+2*time.Second), podsExecIn(pod, at)} {
			go func() { defer wg.Done(); assert.NoError(t, p.ConsumeLogs(context.Background(), ld)) }()
		}
	}
	wg.Wait()
	consume(t, p, auditTraffic(time.Minute))
	a, res := alertsOf(sink, "K8SC-0001")
	seen := map[any]int{}
	for _, r := range res {
		seen[r["k8s.pod.name"]]++
	}
	assert.Len(t, a, pods, "one alert per pod")
	assert.Len(t, seen, pods, "each pod's own")
}

// Annotate mode marks only the event in hand, so it takes events in arrival
// order: the shell that completes K8SC-0040 right after the exec is marked.
func TestAnnotateModeTakesArrivalOrder(t *testing.T) {
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), testCfg(ModeAnnotate, "correlation"), sink)
	consume(t, p, podsExec(0), kernelSteps(time.Second, 2*time.Second))
	events, alerts := records(sink)
	assert.Empty(t, alerts)
	require.Len(t, events, 3)
	assert.Equal(t, []any{"Shell in a pod right after an exec through the API"}, attr(events[1], "security_rule.matched"))
	assert.Equal(t, []any{"Exec into a pod, then a shell, then an outbound connection"}, attr(events[2], "security_rule.matched"))
}

// A record with neither Timestamp nor ObservedTimestamp takes its arrival
// time: read as 1970, it would be late behind every timestamped event.
func TestEventWithoutTimeTakesArrival(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	sink := new(consumertest.LogsSink)
	cfg := testCfg(ModeAlerts, "correlation")
	cfg.FlushInterval = time.Hour
	p := newTestProcessor(t, tt, cfg, sink)
	now := auditTraffic(0)
	now.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	untimed := func(ld plog.Logs) plog.Logs {
		for _, lr := range ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().All() {
			lr.SetTimestamp(0)
		}
		return ld
	}
	consume(t, p, now, untimed(podsExec(0)), untimed(kernelSteps(0, 0)))
	require.NoError(t, p.Shutdown(context.Background()))
	a, _ := alertsOf(sink, "K8SC-0001")
	assert.Len(t, a, 1)
	_, err := tt.GetMetric("otelcol_processor_security_rules_late_events")
	assert.Error(t, err, "nothing was late")
}
