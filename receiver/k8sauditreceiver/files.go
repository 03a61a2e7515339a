package k8sauditreceiver

import (
	"context"
	"fmt"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/adapter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/helper"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// Backoff while the pipeline refuses a batch read from a file. The file
// consumer moves its offset on after every emit, so giving up would lose lines:
// a full pipeline slows the tailer down instead.
const (
	retryInitialInterval = 50 * time.Millisecond
	retryMaxInterval     = 5 * time.Second
)

// fileTailer follows audit log files with contrib's stanza file consumer, which
// owns globbing, rotation, fingerprints and checkpointing.
type fileTailer struct {
	r       *auditReceiver
	obs     *receiverhelper.ObsReport
	manager *fileconsumer.Manager
	storage storage.Client
	ctx     context.Context
	cancel  context.CancelFunc
}

func (t *fileTailer) start(ctx context.Context, host component.Host) error {
	cfg := t.r.cfg.Files.Get()
	var err error
	t.storage, err = adapter.GetStorageClient(ctx, host, cfg.StorageID, t.r.set.ID)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	fc := cfg.Config
	// A line longer than max_event_size would be split into fragments that are
	// each reported as malformed; let the consumer cut it one byte over the
	// limit so it is reported once, as too large.
	fc.MaxLogSize = helper.ByteSize(max(int64(fc.MaxLogSize), int64(t.r.cfg.MaxEventSize)+1))
	t.manager, err = fc.Build(t.r.set.TelemetrySettings, t.emit)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if err := t.manager.Start(t.storage); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	t.r.set.Logger.Info("Tailing audit log files", zap.Strings("include", cfg.Include),
		zap.String("start_at", cfg.StartAt), zap.Bool("checkpointed", cfg.StorageID != nil))
	return nil
}

func (t *fileTailer) shutdown() error {
	if t.cancel != nil {
		t.cancel()
	}
	var err error
	if t.manager != nil {
		err = t.manager.Stop()
	}
	if t.storage != nil {
		if cerr := t.storage.Close(context.Background()); err == nil {
			err = cerr
		}
	}
	return err
}

// emit is the file consumer's callback: a batch of lines from one file.
func (t *fileTailer) emit(_ context.Context, lines [][]byte, attrs map[string]any, lastRecord int64, _ []int64) error {
	ctx := t.obs.StartLogsOp(t.ctx)
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
	err := t.consume(ctx, logs)
	t.obs.EndLogsOp(ctx, "audit.k8s.io/v1", records.Len(), err)
	return err
}

// consume hands a batch to the pipeline, waiting out backpressure.
func (t *fileTailer) consume(ctx context.Context, logs plog.Logs) error {
	wait := retryInitialInterval
	for {
		// The pipeline may mutate what it is given; keep a copy for a retry.
		attempt := logs
		if t.r.next.Capabilities().MutatesData {
			attempt = plog.NewLogs()
			logs.CopyTo(attempt)
		}
		err := t.r.next.ConsumeLogs(ctx, attempt)
		if err == nil || consumererror.IsPermanent(err) {
			if err != nil {
				t.r.set.Logger.Error("Pipeline rejected audit events read from a file", zap.Error(err))
			}
			return err
		}
		t.r.set.Logger.Warn("Pipeline refused audit events read from a file, retrying",
			zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("shut down while the pipeline refused %d audit events: %w", logs.LogRecordCount(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMaxInterval)
	}
}
