package securityalertsexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/template"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadata"
)

// alertsExporter turns a batch of log records into requests of one format
// to one destination; exporterhelper around it queues, batches and retries.
type alertsExporter struct {
	cfg       *Config
	settings  component.TelemetrySettings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	client    *http.Client
	url       string
	tmpl      *template.Template
	hostname  string
	now       func() time.Time
	grouper   *grouper // nil unless a chat format groups
	stdout    *lineWriter
}

// lineWriter writes whole lines, one Write each, so that concurrent
// consumers never interleave two alerts.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) writeLine(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(append(b, '\n'))
	return err
}

func newAlertsExporter(set exporter.Settings, cfg *Config) (*alertsExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &alertsExporter{
		cfg:       cfg,
		settings:  set.TelemetrySettings,
		logger:    set.Logger,
		telemetry: tb,
		url:       cfg.Endpoint,
		now:       time.Now,
	}
	if cfg.Format == FormatAlertmanager {
		e.url = strings.TrimSuffix(cfg.Endpoint, "/") + alertmanagerPath
	}
	if cfg.Format == FormatWebhook && cfg.Webhook.Template != "" {
		if e.tmpl, err = parseTemplate(cfg.Webhook.Template); err != nil {
			return nil, fmt.Errorf("webhook.template: %w", err)
		}
	}
	if cfg.Format == FormatStdout {
		e.stdout = &lineWriter{w: os.Stdout}
	}
	if cfg.Grouping.Enabled {
		e.grouper = newGrouper(cfg.Grouping)
		e.grouper.direct = e.pushLogs
	}
	// Falco names the host that saw the event; ours is the node when the
	// alert names none.
	e.hostname, _ = os.Hostname()
	return e, nil
}

func (e *alertsExporter) start(ctx context.Context, host component.Host) error {
	if e.stdout != nil {
		return nil // no HTTP
	}
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings)
	if err != nil {
		return err
	}
	e.client = client
	if e.grouper != nil {
		e.grouper.start()
	}
	return nil
}

func (e *alertsExporter) shutdown(ctx context.Context) error {
	if e.grouper != nil {
		e.grouper.shutdown(ctx)
	}
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	e.telemetry.Shutdown()
	return nil
}

// pushLogs sends the batch's alerts and passes over everything else.
func (e *alertsExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	var admit func(*Alert, plog.ResourceLogs, plog.LogRecord) bool
	if e.grouper != nil {
		admit = e.grouper.admit
	}
	alerts, passed, grouped := collectAlerts(ld, admit)
	if passed > 0 {
		e.telemetry.ExporterSecurityAlertsPassedOver.Add(ctx, int64(passed))
	}
	if grouped > 0 {
		e.telemetry.ExporterSecurityAlertsGrouped.Add(ctx, int64(grouped))
	}
	if len(alerts) == 0 {
		return nil
	}
	if e.stdout != nil {
		return e.writeStdout(ctx, alerts)
	}
	if e.cfg.Format == FormatAlertmanager {
		// One request for the batch: Alertmanager takes a list.
		body, err := renderAlertmanager(alerts, &e.cfg.Alertmanager, e.now())
		if err != nil {
			return consumererror.NewPermanent(err)
		}
		err = e.post(ctx, body, len(alerts))
		if err != nil && !consumererror.IsPermanent(err) {
			// Retry the alerts only: the records passed over are not counted twice.
			return consumererror.NewLogs(err, unsent(alerts))
		}
		return err
	}
	// The other formats are one alert per request, as Falco and chat
	// webhooks take them. A retryable failure stops here and hands back the
	// alerts not yet sent, so that a retry sends each once.
	var errs []error
	for i := range alerts {
		body, err := e.render(&alerts[i])
		if err != nil {
			e.logger.Error("alert not rendered; dropped", zap.String("rule", alerts[i].Rule), zap.Error(err))
			e.countFailed(ctx, "render", int(max(1, alerts[i].GroupCount)))
			continue
		}
		// A group's message stands for the alerts folded into it.
		if err := e.post(ctx, body, int(max(1, alerts[i].GroupCount))); err != nil {
			if consumererror.IsPermanent(err) {
				errs = append(errs, err) // this one is refused; the others may pass
				continue
			}
			return consumererror.NewLogs(err, unsent(alerts[i:]))
		}
	}
	if len(errs) > 0 {
		return consumererror.NewPermanent(errors.Join(errs...))
	}
	return nil
}

// writeStdout writes each alert as a line of Falco JSON. A failed write (a
// closed stdout) is retried from the first alert not written.
func (e *alertsExporter) writeStdout(ctx context.Context, alerts []Alert) error {
	for i := range alerts {
		line, err := renderFalco(&alerts[i], e.hostname)
		if err != nil {
			e.logger.Error("alert not rendered; dropped", zap.String("rule", alerts[i].Rule), zap.Error(err))
			e.countFailed(ctx, "render", 1)
			continue
		}
		if err := e.stdout.writeLine(line); err != nil {
			e.countFailed(ctx, "other", len(alerts)-i)
			return consumererror.NewLogs(fmt.Errorf("writing alerts to standard output: %w", err), unsent(alerts[i:]))
		}
		e.telemetry.ExporterSecurityAlertsSent.Add(ctx, 1)
	}
	return nil
}

func (e *alertsExporter) render(a *Alert) ([]byte, error) {
	switch e.cfg.Format {
	case FormatFalco:
		return renderFalco(a, e.hostname)
	case FormatSlack:
		return renderSlack(a)
	default:
		return renderWebhook(e.tmpl, a)
	}
}

// collectAlerts reads every security.alert record of ld that admit (nil:
// all) lets through, and counts the other records and the alerts folded.
func collectAlerts(ld plog.Logs, admit func(*Alert, plog.ResourceLogs, plog.LogRecord) bool) (alerts []Alert, passed, grouped int) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if !isAlert(lr) {
					passed++
					continue
				}
				a := readAlert(rl.Resource(), lr)
				if admit != nil && !admit(&a, rl, lr) {
					grouped++
					continue
				}
				alerts = append(alerts, a)
			}
		}
	}
	return alerts, passed, grouped
}

// unsent copies the alerts' records, each under its resource, marked as
// already admitted by grouping, for exporterhelper to retry.
func unsent(alerts []Alert) plog.Logs {
	ld := plog.NewLogs()
	for i := range alerts {
		rl := ld.ResourceLogs().AppendEmpty()
		alerts[i].res.CopyTo(rl.Resource())
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		alerts[i].lr.CopyTo(lr)
		lr.Attributes().PutBool(attrAdmitted, true)
	}
	return ld
}
