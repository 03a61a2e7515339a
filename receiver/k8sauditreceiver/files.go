package k8sauditreceiver

import (
	"context"
	"fmt"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/helper"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"
)

// fileTailer follows audit log files with the shared file tailer (contrib's
// stanza file consumer), which owns globbing, rotation, fingerprints and
// checkpointing.
type fileTailer struct {
	r      *auditReceiver
	obs    *receiverhelper.ObsReport
	tailer *filetail.Tailer
}

func (t *fileTailer) start(ctx context.Context, host component.Host) error {
	cfg := t.r.cfg.Files.Get()
	fc := cfg.Config
	// A line longer than max_event_size would be split into fragments that are
	// each reported as malformed; let the consumer cut it one byte over the
	// limit so it is reported once, as too large.
	fc.MaxLogSize = helper.ByteSize(max(int64(fc.MaxLogSize), int64(t.r.cfg.MaxEventSize)+1))
	t.tailer = filetail.New()
	if err := t.tailer.Start(ctx, host, t.r.set.TelemetrySettings, t.r.set.ID, fc, cfg.StorageID, t.emit); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	t.r.set.Logger.Info("Tailing audit log files", zap.Strings("include", cfg.Include),
		zap.String("start_at", cfg.StartAt), zap.Bool("checkpointed", cfg.StorageID != nil))
	return nil
}

func (t *fileTailer) shutdown() error {
	if t.tailer == nil {
		return nil
	}
	return t.tailer.Shutdown()
}

// emit is the file consumer's callback: a batch of lines from one file.
func (t *fileTailer) emit(_ context.Context, lines [][]byte, attrs map[string]any, lastRecord int64, _ []int64) error {
	filetail.ValidUTF8(lines)
	ctx := t.obs.StartLogsOp(t.tailer.Context())
	logs, records := t.r.newLogs()
	var stats decodeStats
	firstRecord := int(lastRecord) - len(lines) + 1
	d := t.r.getDecoder()
	for i, line := range lines {
		d.decodeLine(line, firstRecord+i, records, &stats)
	}
	t.r.putDecoder(d)
	fileName, _ := attrs["log.file.name"].(string)
	t.r.account(ctx, sourceFile, fileName, &stats)
	for i := 0; i < records.Len(); i++ {
		la := records.At(i).Attributes()
		for k, v := range attrs {
			if s, ok := v.(string); ok {
				la.PutStr(k, s)
			}
		}
	}
	if records.Len() == 0 {
		t.obs.EndLogsOp(ctx, "audit.k8s.io/v1", 0, nil)
		return nil
	}
	t.r.enrich(records)
	err := filetail.Consume(ctx, t.r.next, logs, t.r.set.Logger, "audit events")
	t.obs.EndLogsOp(ctx, "audit.k8s.io/v1", records.Len(), err)
	return err
}
