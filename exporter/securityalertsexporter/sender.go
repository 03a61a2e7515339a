package securityalertsexporter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// maxErrorBody caps how much of a refusal's body is logged and returned.
const maxErrorBody = 4 << 10

// post sends one JSON body carrying n alerts and classifies the outcome for
// exporterhelper: a 4xx is permanent (the same body would be refused again),
// a 5xx or a connection error is retried.
func (e *alertsExporter) post(ctx context.Context, body []byte, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("building the request to %s: %w", e.url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		e.countFailed(ctx, "connection", n)
		return fmt.Errorf("sending %d alert(s) to %s: %w", n, e.url, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		e.telemetry.ExporterSecurityAlertsSent.Add(ctx, int64(n))
		return nil
	case code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout:
		e.countFailed(ctx, "4xx", n)
		e.logger.Error("destination refused alerts; not retried",
			zap.String("url", e.url), zap.Int("status", code), zap.Int("alerts", n), zap.ByteString("body", text))
		return consumererror.NewPermanent(fmt.Errorf("%s refused %d alert(s): HTTP %d: %s", e.url, n, code, text))
	default:
		class := "other"
		if code >= 500 {
			class = "5xx"
		} else if code >= 400 {
			class = "4xx" // 408 and 429: the destination asks to come back later
		}
		e.countFailed(ctx, class, n)
		return fmt.Errorf("%s answered HTTP %d to %d alert(s), will retry: %s", e.url, code, n, text)
	}
}

func (e *alertsExporter) countFailed(ctx context.Context, class string, n int) {
	e.telemetry.ExporterSecurityAlertsFailed.Add(ctx, int64(n),
		metric.WithAttributes(attribute.String("http.status_class", class)))
}
