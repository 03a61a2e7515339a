package k8sauditreceiver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver/internal/metadata"
)

// Where an event came from, as the self-metrics label it.
const (
	sourceWebhook = "webhook"
	sourceFile    = "file"
)

// auditReceiver runs the webhook server and the file tailer, whichever are
// configured; both decode with the same decoder and feed the same consumer.
type auditReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	telemetry *metadata.TelemetryBuilder
	decoders  sync.Pool

	webhook *webhookServer
	files   *fileTailer
	pods    *podLabels // nil unless pod_labels.enabled
}

func newAuditReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*auditReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	keep := make(map[string]bool, len(cfg.Stages))
	for _, s := range cfg.Stages {
		keep[s] = true
	}
	r := &auditReceiver{cfg: cfg, set: set, next: next, telemetry: tb}
	r.decoders.New = func() any {
		return &decoder{mapper: mapper{keepStage: keep, redact: cfg.Redact.Enabled}, maxEventSize: cfg.MaxEventSize}
	}
	return r, nil
}

func (r *auditReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.PodLabels.Enabled {
		rc, err := k8sclient.RestConfig(r.cfg.PodLabels.AuthType)
		if err != nil {
			return fmt.Errorf("pod_labels: %w", err)
		}
		if r.pods, err = startPodLabels(ctx, rc, r.set.Logger); err != nil {
			return err
		}
	}
	if r.cfg.Webhook.Enabled {
		obs, err := r.obsReport("http")
		if err != nil {
			return err
		}
		r.webhook = &webhookServer{r: r, obs: obs}
		if err := r.webhook.start(ctx, host); err != nil {
			return err
		}
	}
	if r.cfg.Files.HasValue() {
		obs, err := r.obsReport("file")
		if err != nil {
			return err
		}
		r.files = &fileTailer{r: r, obs: obs}
		if err := r.files.start(ctx, host); err != nil {
			return errors.Join(err, r.Shutdown(ctx))
		}
	}
	return nil
}

func (r *auditReceiver) Shutdown(ctx context.Context) error {
	var errs []error
	if r.webhook != nil {
		errs = append(errs, r.webhook.shutdown(ctx))
	}
	if r.files != nil {
		errs = append(errs, r.files.shutdown())
	}
	if r.pods != nil {
		r.pods.stop()
		r.pods = nil
	}
	r.telemetry.Shutdown()
	return errors.Join(errs...)
}

func (r *auditReceiver) obsReport(transport string) (*receiverhelper.ObsReport, error) {
	return receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             r.set.ID,
		Transport:              transport,
		ReceiverCreateSettings: r.set,
	})
}

// enrich adds what the decoder cannot know to a batch: the pods' labels.
func (r *auditReceiver) enrich(records plog.LogRecordSlice) {
	if r.pods != nil {
		r.pods.enrich(records)
	}
}

// newLogs starts an empty batch under this receiver's scope.
func (r *auditReceiver) newLogs() (plog.Logs, plog.LogRecordSlice) {
	logs := plog.NewLogs()
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	return logs, sl.LogRecords()
}

// account records what a decode saw in the self-metrics and logs every
// malformed event with where it came from and why.
func (r *auditReceiver) account(ctx context.Context, source, where string, stats *decodeStats) {
	src := metric.WithAttributeSet(attribute.NewSet(attribute.String("source", source)))
	r.telemetry.ReceiverK8sAuditEventsReceived.Add(ctx, int64(stats.received), src)
	if stats.filtered > 0 {
		r.telemetry.ReceiverK8sAuditEventsFiltered.Add(ctx, int64(stats.filtered), src)
	}
	if len(stats.malformed) == 0 {
		return
	}
	r.telemetry.ReceiverK8sAuditEventsMalformed.Add(ctx, int64(len(stats.malformed)), src)
	for _, e := range stats.malformed {
		r.set.Logger.Warn("Dropped a malformed audit event",
			zap.String("source", source), zap.String("from", where),
			zap.Int("index", e.Index), zap.String("audit_id", e.AuditID), zap.String("reason", e.Reason))
	}
}

func (r *auditReceiver) getDecoder() *decoder  { return r.decoders.Get().(*decoder) }
func (r *auditReceiver) putDecoder(d *decoder) { r.decoders.Put(d) }
