package ingresslogreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// sinks collect what a receiver sends to its two pipelines.
type sinks struct {
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
}

// startReceiver runs an ingress_log receiver on include, feeding both
// pipelines, and stops it when the test ends.
func startReceiver(t *testing.T, include string, edit func(*Config)) sinks {
	t.Helper()
	s := sinks{new(consumertest.LogsSink), new(consumertest.MetricsSink)}
	startReceiverInto(t, include, edit, s.logs, s.metrics)
	return s
}

// startReceiverInto runs an ingress_log receiver on include that feeds logs
// and metrics, and stops it when the test ends.
func startReceiverInto(t *testing.T, include string, edit func(*Config), logs consumer.Logs, metrics consumer.Metrics) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Include = []string{include}
	cfg.StartAt = "beginning"
	cfg.PollInterval = 10 * time.Millisecond
	cfg.Metrics.Interval = 50 * time.Millisecond
	if edit != nil {
		edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(NewFactory().Type())
	lr, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := NewFactory().CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	require.Same(t, lr, mr, "one receiver serves both pipelines")
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, lr.Shutdown(context.Background()))
		require.NoError(t, mr.Shutdown(context.Background()))
	})
}

// rec is a record with its resource, as a test reads it.
type rec struct {
	plog.LogRecord
	res pcommon.Map
}

func records(s *consumertest.LogsSink) []rec {
	var out []rec
	for _, ld := range s.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, rec{lrs.At(k), rl.Resource().Attributes()})
				}
			}
		}
	}
	return out
}

func waitRecords(t *testing.T, s *consumertest.LogsSink, n int) []rec {
	t.Helper()
	require.Eventually(t, func() bool { return len(records(s)) >= n }, 10*time.Second, 5*time.Millisecond,
		"want %d records, have %d", n, len(records(s)))
	time.Sleep(100 * time.Millisecond) // a duplicate would show up now
	got := records(s)
	require.Len(t, got, n)
	return got
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

// accessLine is an ingress-nginx default line for request i.
func accessLine(i int, path string, status int) string {
	return fmt.Sprintf(`10.244.0.%d - - [29/Nov/2026:10:11:12 +0000] "GET %s HTTP/1.1" %d 612 "-" "Mozilla/5.0 (X11; Linux x86_64)" 431 0.004 [shop-web-8080] [] 10.244.1.7:8080 612 0.004 %d req-%d`,
		i, path, status, status, i)
}

const containerID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// A containerd log of ingress-nginx: CRI framing taken off, a line split by
// the runtime put back together across batches, a garbage line forwarded
// with what it was and why, and the pod read from the path.
func TestCRIContainerLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "containers")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	logPath := filepath.Join(dir, "ingress-nginx-controller-7d9c8b6f5-x2x4z_ingress-nginx_controller-"+containerID+".log")
	s := startReceiver(t, filepath.Join(dir, "*.log"), nil)

	long := accessLine(2, "/search?q="+strings.Repeat("a", 300), 200)
	filetest.AppendLines(t, logPath,
		"2026-11-29T10:11:12.000000001Z stdout F "+accessLine(1, "/", 200),
		"2026-11-29T10:11:12.000000002Z stdout P "+long[:100],
	)
	waitRecords(t, s.logs, 1)
	filetest.AppendLines(t, logPath,
		"2026-11-29T10:11:12.000000003Z stdout P "+long[100:200],
		"2026-11-29T10:11:12.000000004Z stdout F "+long[200:],
		"2026-11-29T10:11:12.000000005Z stderr F I1129 10:11:12.000000 7 controller.go:190] Configuration changes detected",
		"2026-11-29T10:11:12.000000006Z stdout F "+accessLine(3, "/missing", 404),
	)
	got := waitRecords(t, s.logs, 4)

	first := got[0]
	assert.Equal(t, "http.access", first.EventName())
	assert.Equal(t, time.Date(2026, 11, 29, 10, 11, 12, 0, time.UTC), first.Timestamp().AsTime())
	assert.Equal(t, map[string]any{
		"client.address": "10.244.0.1", "http.request.method": "GET", "url.path": "/", "network.protocol.version": "1.1",
		"http.response.status_code": int64(200), "http.response.body.size": int64(612), "http.request.size": int64(431),
		"user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)", "http.server.request.duration": 0.004,
		"k8ssec.upstream.name": "shop-web-8080", "k8ssec.upstream.address": "10.244.1.7:8080", "k8ssec.upstream.status_code": int64(200),
		"k8ssec.upstream.response.size": int64(612), "k8ssec.upstream.duration": 0.004, "k8ssec.http.request.id": "req-1",
		"k8s.namespace.name": "shop", "k8s.service.name": "web", "k8s.service.port": "8080",
		"k8ssec.url.normalized": "/", "k8ssec.url.path.normalized": "/",
	}, first.Attributes().AsRaw())
	assert.Equal(t, map[string]any{
		"k8s.namespace.name": "ingress-nginx", "k8s.pod.name": "ingress-nginx-controller-7d9c8b6f5-x2x4z",
		"k8s.container.name": "controller", "container.id": containerID, "log.file.name": filepath.Base(logPath), "log.file.path": logPath,
	}, first.res.AsRaw())

	assert.Equal(t, "q="+strings.Repeat("a", 300), str(got[1].Attributes(), "url.query"), "reassembled from three pieces")
	assert.Equal(t, "req-2", str(got[1].Attributes(), "k8ssec.http.request.id"))

	bad := got[2].Attributes()
	assert.Equal(t, "I1129 10:11:12.000000 7 controller.go:190] Configuration changes detected", str(bad, "log.record.original"))
	assert.Equal(t, `no " - " after $remote_addr`, str(bad, "k8ssec.parse.error"))
	assert.Equal(t, "i1129 10:11:12.000000 7 controller.go:190] configuration changes detected", str(bad, "k8ssec.url.normalized"),
		"a line that does not parse is judged whole")
	assert.Equal(t, plog.SeverityNumberWarn, got[3].SeverityNumber(), "a 404")

	// RED metrics: three requests to shop/web, two 2xx and one 4xx.
	require.Eventually(t, func() bool { return requestCount(s.metrics, "2xx") == 2 && requestCount(s.metrics, "4xx") == 1 },
		5*time.Second, 10*time.Millisecond)
	h := lastHistogram(t, s.metrics, "2xx")
	assert.Equal(t, uint64(2), h.Count())
	assert.InDelta(t, 0.008, h.Sum(), 1e-9)
	assert.Equal(t, "shop", str(h.Attributes(), "k8s.namespace.name"))
	assert.Equal(t, "web", str(h.Attributes(), "k8s.service.name"))
	assert.Equal(t, "GET", str(h.Attributes(), "http.request.method"))
}

// requestCount is the latest cumulative request count of a status class.
func requestCount(s *consumertest.MetricsSink, class string) int64 {
	var n int64 = -1
	for _, md := range s.AllMetrics() {
		forMetric(md, metricRequests, func(m pmetric.Metric) {
			dps := m.Sum().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				if str(dps.At(i).Attributes(), attrStatusClass) == class {
					n = dps.At(i).IntValue()
				}
			}
		})
	}
	return n
}

func lastHistogram(t *testing.T, s *consumertest.MetricsSink, class string) pmetric.HistogramDataPoint {
	var h pmetric.HistogramDataPoint
	found := false
	for _, md := range s.AllMetrics() {
		forMetric(md, metricDuration, func(m pmetric.Metric) {
			dps := m.Histogram().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				if str(dps.At(i).Attributes(), attrStatusClass) == class {
					h, found = dps.At(i), true
				}
			}
		})
	}
	require.True(t, found, "a duration histogram for %s", class)
	return h
}

func forMetric(md pmetric.Metrics, name string, fn func(pmetric.Metric)) {
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() == name {
					fn(ms.At(k))
				}
			}
		}
	}
}

// Docker's json-file driver: the JSON taken off, a line split at 16 KiB
// (no newline at the end of the piece) joined again.
func TestDockerJSONFile(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "nginx-json.log")
	s := startReceiver(t, filepath.Join(dir, "*.log"), func(c *Config) { c.Container = containerDocker })
	line := accessLine(5, `/a"b`, 301)
	filetest.AppendLines(t, logPath,
		`{"log":"`+strings.ReplaceAll(line[:50], `"`, `\"`)+`","stream":"stdout","time":"2026-11-29T10:11:12.1Z"}`,
		`{"log":"`+strings.ReplaceAll(line[50:], `"`, `\"`)+`\n","stream":"stdout","time":"2026-11-29T10:11:12.2Z"}`,
		`{"stream":"stdout"}`,
	)
	got := waitRecords(t, s.logs, 2)
	assert.Equal(t, `/a"b`, str(got[0].Attributes(), "url.path"))
	assert.Equal(t, "301", str(got[0].Attributes(), "http.response.status_code"))
	assert.Equal(t, "<absent>", str(got[0].res, "k8s.pod.name"), "not a kubelet path")
	assert.Equal(t, "not a Docker json-file line", str(got[1].Attributes(), "k8ssec.parse.error"))
}

// nginx on a host: plain files, renamed by logrotate while nginx writes; every
// line exactly once, the ones written after the rename from the new file.
func TestRotationWhileWriting(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	s := startReceiver(t, filepath.Join(dir, "access.log*"), func(c *Config) { c.Container = containerNone })
	for i := range 20 {
		filetest.AppendLines(t, logPath, accessLine(i, fmt.Sprintf("/r%d", i), 200))
		if i == 9 {
			require.NoError(t, os.Rename(logPath, logPath+".1"))
		}
	}
	got := waitRecords(t, s.logs, 20)
	seen := map[string]int{}
	for _, r := range got {
		seen[str(r.Attributes(), "url.path")]++
	}
	for i := range 20 {
		assert.Equal(t, 1, seen[fmt.Sprintf("/r%d", i)], "request %d", i)
	}
}
