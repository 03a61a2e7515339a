package securityalertsexporter

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadatatest"
)

// Five firings of one rule in one pod within the interval: the first is sent
// at once, the other four make one message after the interval, with their
// count. Another pod is another group.
func TestGroupingSendsOncePerInterval(t *testing.T) {
	srv := newCaptureServer(t)
	cfg := testConfig(FormatWebhook, srv.URL)
	cfg.Grouping.Enabled = true
	cfg.Grouping.GroupInterval = 300 * time.Millisecond
	exp, tt := newTestExporter(t, cfg)

	ld := plog.NewLogs()
	for range 5 {
		appendAlert(ld, execAlert("a"))
	}
	other := execAlert("b")
	other.attrs["k8s.pod.name"] = "web-1"
	appendAlert(ld, other)
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	require.Len(t, srv.requests(), 2, "the first of each group at once")

	require.Eventually(t, func() bool { return len(srv.requests()) == 3 }, 5*time.Second, 20*time.Millisecond)
	var summary map[string]any
	require.NoError(t, json.Unmarshal(srv.requests()[2], &summary))
	assert.Equal(t, float64(4), summary["group_count"], "the message carries the folded alerts' count")
	assert.Equal(t, "web-0", summary["k8s.pod.name"])
	assert.NotContains(t, summary, attrGroupCount, "the marker is ours, not the event's")
	time.Sleep(3 * cfg.Grouping.GroupInterval)
	assert.Len(t, srv.requests(), 3, "nothing more to send")

	metadatatest.AssertEqualExporterSecurityAlertsGrouped(t, tt, []metricdata.DataPoint[int64]{sum(4)}, ignoreTimes...)
	metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(6)}, ignoreTimes...)
}

// What is folded when the collector stops is sent then, not lost.
func TestGroupingFlushesOnShutdown(t *testing.T) {
	srv := newCaptureServer(t)
	cfg := testConfig(FormatSlack, srv.URL)
	cfg.Grouping.Enabled = true
	cfg.Grouping.GroupInterval = time.Hour
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	ld := plog.NewLogs()
	for range 3 {
		appendAlert(ld, execAlert("a"))
	}
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	require.Len(t, srv.requests(), 1)
	require.NoError(t, exp.Shutdown(context.Background()))
	bodies := srv.requests()
	require.Len(t, bodies, 2)
	assert.Contains(t, string(bodies[1]), "(2 more)")
}

func TestGroupingOnlyForChatFormats(t *testing.T) {
	cfg := testConfig(FormatAlertmanager, "http://127.0.0.1:9093")
	cfg.Grouping.Enabled = true
	require.ErrorContains(t, cfg.Validate(), "grouping applies to the webhook and slack formats")
}
