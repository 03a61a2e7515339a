package securityalertsexporter

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadatatest"
)

func oneAlert() plog.Logs {
	ld := plog.NewLogs()
	appendAlert(ld, execAlert("audit-1"))
	return ld
}

// A 400 means this body will never be accepted: one request, no retry, a
// permanent error that carries the response body, counted as 4xx.
func TestBadRequestIsNotRetried(t *testing.T) {
	for _, format := range []string{FormatWebhook, FormatSlack, FormatAlertmanager} {
		t.Run(format, func(t *testing.T) {
			srv := newCaptureServer(t, http.StatusBadRequest)
			exp, tt := newTestExporter(t, testConfig(format, srv.URL))
			err := exp.ConsumeLogs(context.Background(), oneAlert())
			require.Error(t, err)
			assert.True(t, consumererror.IsPermanent(err), "a 4xx is permanent: %v", err)
			assert.Contains(t, err.Error(), "HTTP 400: Bad Request", "the response body is in the error")
			assert.Len(t, srv.requests(), 1, "not retried")
			metadatatest.AssertEqualExporterSecurityAlertsFailed(t, tt,
				[]metricdata.DataPoint[int64]{sum(1, attribute.String("http.status_class", "4xx"))}, ignoreTimes...)
		})
	}
}

// A 503 is the destination being busy or restarting: retried until it
// accepts, and then counted as sent once.
func TestUnavailableIsRetried(t *testing.T) {
	for _, format := range []string{FormatWebhook, FormatSlack, FormatFalco} {
		t.Run(format, func(t *testing.T) {
			srv := newCaptureServer(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
			exp, tt := newTestExporter(t, testConfig(format, srv.URL))
			require.NoError(t, exp.ConsumeLogs(context.Background(), oneAlert()))
			bodies := srv.requests()
			require.Len(t, bodies, 3, "two 503s, then accepted")
			assert.Equal(t, bodies[0], bodies[2], "the retry sends the same alert")
			metadatatest.AssertEqualExporterSecurityAlertsFailed(t, tt,
				[]metricdata.DataPoint[int64]{sum(2, attribute.String("http.status_class", "5xx"))}, ignoreTimes...)
			metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(1)}, ignoreTimes...)
		})
	}
}

// With nothing listening, the connection error is retried (not permanent)
// and counted under "connection".
func TestConnectionErrorIsRetryable(t *testing.T) {
	srv := newCaptureServer(t)
	url := srv.URL
	srv.Close()
	cfg := testConfig(FormatWebhook, url)
	cfg.RetryConfig.MaxElapsedTime = 200 * time.Millisecond // give up quickly, then look
	exp, tt := newTestExporter(t, cfg)
	err := exp.ConsumeLogs(context.Background(), oneAlert())
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "a connection error is retried: %v", err)
	got, err := tt.GetMetric("otelcol_exporter_security_alerts_failed")
	require.NoError(t, err)
	dps := got.Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, dps, 1)
	class, _ := dps[0].Attributes.Value("http.status_class")
	assert.Equal(t, "connection", class.AsString())
	assert.GreaterOrEqual(t, dps[0].Value, int64(2), "tried, then retried")
}

// The confighttp client settings apply: headers (an auth token) and
// compression reach the destination.
func TestClientSettingsApply(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = io.Copy(io.Discard, zr)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(FormatWebhook, srv.URL)
	cfg.Headers = configopaque.MapList{{Name: "Authorization", Value: "Bearer s3cret"}}
	cfg.Compression = configcompression.TypeGzip
	exp, _ := newTestExporter(t, cfg)
	require.NoError(t, exp.ConsumeLogs(context.Background(), oneAlert()))
	assert.Equal(t, "Bearer s3cret", got.Get("Authorization"))
	assert.Equal(t, "gzip", got.Get("Content-Encoding"))
}

// When the second of three one-per-request alerts meets a 503, the retry
// sends the second and the third, not the first again.
func TestRetrySendsOnlyWhatWasNotSent(t *testing.T) {
	srv := newCaptureServer(t, http.StatusOK, http.StatusServiceUnavailable, http.StatusOK)
	cfg := testConfig(FormatFalco, srv.URL)
	cfg.Grouping.Enabled = false
	exp, _ := newTestExporter(t, cfg)
	ld := plog.NewLogs()
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		appendAlert(ld, execAlert(id))
	}
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	var ids []any
	for _, b := range srv.requests() {
		ids = append(ids, decodeFalcoStrict(t, b).OutputFields["ka.auditid"])
	}
	assert.Equal(t, []any{"a-1", "a-2", "a-2", "a-3"}, ids)
}

// The same with grouping on: an alert grouping let through and handed back
// for a retry is sent, not folded into its own group.
func TestRetryOfGroupedAlertIsNotFolded(t *testing.T) {
	srv := newCaptureServer(t, http.StatusServiceUnavailable, http.StatusOK)
	cfg := testConfig(FormatWebhook, srv.URL)
	cfg.Grouping.Enabled = true
	exp, tt := newTestExporter(t, cfg)
	require.NoError(t, exp.ConsumeLogs(context.Background(), oneAlert()))
	require.Len(t, srv.requests(), 2, "the 503, then the retry")
	assert.Equal(t, srv.requests()[0], srv.requests()[1])
	assert.NotContains(t, string(srv.requests()[1]), attrAdmitted)
	metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(1)}, ignoreTimes...)
}

// Alertmanager's batch is retried whole, as alerts only: the record passed
// over is counted once.
func TestAlertmanagerBatchRetriedAsAlertsOnly(t *testing.T) {
	srv := newCaptureServer(t, http.StatusServiceUnavailable, http.StatusOK)
	exp, tt := newTestExporter(t, testConfig(FormatAlertmanager, srv.URL))
	ld := oneAlert()
	appendAlert(ld, execAlert("audit-2"))
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName("process.exec")
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	bodies := srv.requests()
	require.Len(t, bodies, 2)
	var first, retry []amAlert
	require.NoError(t, json.Unmarshal(bodies[0], &first))
	require.NoError(t, json.Unmarshal(bodies[1], &retry))
	require.Len(t, retry, 2, "the retry is the same two alerts")
	for i := range retry {
		assert.Equal(t, first[i].Labels, retry[i].Labels)
		assert.Equal(t, first[i].Annotations, retry[i].Annotations)
		assert.False(t, retry[i].EndsAt.Before(first[i].EndsAt), "endsAt is rendered afresh at each try")
	}
	metadatatest.AssertEqualExporterSecurityAlertsPassedOver(t, tt, []metricdata.DataPoint[int64]{sum(1)}, ignoreTimes...)
	metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(2)}, ignoreTimes...)
}
