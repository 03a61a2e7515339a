// Package filetail is what the receivers that read log files share: contrib's
// stanza file consumer (globbing, rotation, fingerprints, checkpoints in a
// storage extension) started and stopped as one piece, and a hand-off to the
// pipeline that waits out backpressure instead of losing lines.
package filetail // import "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"

import (
	"bytes"
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer/emit"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// Backoff while the pipeline refuses a batch read from a file. The file
// consumer moves its offset on after every emit, so giving up would lose lines:
// a full pipeline slows the tailer down instead.
const (
	retryInitialInterval = 50 * time.Millisecond
	retryMaxInterval     = 5 * time.Second
)

// Tailer follows the files of one fileconsumer.Config.
type Tailer struct {
	manager *fileconsumer.Manager
	storage storage.Client
	ctx     context.Context
	cancel  context.CancelFunc
}

// New returns a Tailer whose Context is live: the file consumer may call back
// before Start returns.
func New() *Tailer {
	t := &Tailer{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Start builds the file consumer and starts it, with offsets checkpointed in
// the storage extension storageID names (none: in memory only). owner is the
// receiver's ID, under which the storage keeps its data.
func (t *Tailer) Start(ctx context.Context, host component.Host, set component.TelemetrySettings, owner component.ID,
	cfg fileconsumer.Config, storageID *component.ID, cb emit.Callback,
) error {
	if storageID != nil {
		if _, ok := host.GetExtensions()[*storageID]; !ok {
			return fmt.Errorf("storage: no extension %q is running: configure it and list it in service.extensions", storageID)
		}
	}
	var err error
	t.storage, err = storageClient(ctx, host, storageID, owner)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	manager, err := cfg.Build(set, cb)
	if err != nil {
		return t.closeAfter(err)
	}
	if err := manager.Start(t.storage); err != nil {
		return t.closeAfter(err)
	}
	t.manager = manager
	return nil
}

// storageClient is stanza's adapter.GetStorageClient: that package registers
// every stanza operator (parsers for syslog, containers, expressions...) at
// init, which the node agent would carry and start for nothing (docs/builds.md).
func storageClient(ctx context.Context, host component.Host, storageID *component.ID, owner component.ID) (storage.Client, error) {
	if storageID == nil {
		return storage.NewNopClient(), nil
	}
	ext, ok := host.GetExtensions()[*storageID].(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a storage extension", storageID)
	}
	return ext.GetClient(ctx, component.KindReceiver, owner, "")
}

func (t *Tailer) closeAfter(err error) error {
	_ = t.storage.Close(context.Background())
	t.storage = nil
	return err
}

// Context is cancelled at Shutdown: a hand-off waiting on a refusing pipeline
// gives up then.
func (t *Tailer) Context() context.Context { return t.ctx }

// Shutdown stops reading and closes the storage client; it is safe after a
// failed Start, and a second call does nothing (the collector may shut a
// component down again).
func (t *Tailer) Shutdown() error {
	t.cancel()
	var err error
	if t.manager != nil {
		err = t.manager.Stop()
		t.manager = nil
	}
	if t.storage != nil {
		if cerr := t.storage.Close(context.Background()); err == nil {
			err = cerr
		}
		t.storage = nil
	}
	return err
}

// Consume hands a batch read from a file to the pipeline, retrying with
// backoff while it refuses, until ctx ends. what names the records in logs.
func Consume(ctx context.Context, next consumer.Logs, logs plog.Logs, logger *zap.Logger, what string) error {
	wait := retryInitialInterval
	for {
		// The pipeline may mutate what it is given; keep a copy for a retry.
		attempt := logs
		if next.Capabilities().MutatesData {
			attempt = plog.NewLogs()
			logs.CopyTo(attempt)
		}
		err := next.ConsumeLogs(ctx, attempt)
		if err == nil || consumererror.IsPermanent(err) {
			if err != nil {
				logger.Error("Pipeline rejected "+what+" read from a file", zap.Error(err))
			}
			return err
		}
		logger.Warn("Pipeline refused "+what+" read from a file, retrying", zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("shut down while the pipeline refused %d %s: %w", logs.LogRecordCount(), what, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMaxInterval)
	}
}

// RawEncoding is the file consumer's encoding that splits lines without
// decoding them: receivers that read UTF-8 logs check the lines themselves
// (ValidUTF8), at a fraction of the decoder's cost.
const RawEncoding = "utf-8-raw"

// ValidUTF8 replaces, in place, each line that is not valid UTF-8 by one
// whose invalid bytes are U+FFFD: records carry only valid strings, and a
// garbled line is kept, repaired, not dropped. Lines are almost always
// valid: the check is all most of them cost.
func ValidUTF8(lines [][]byte) {
	for i, l := range lines {
		if !utf8.Valid(l) {
			lines[i] = bytes.ToValidUTF8(l, []byte("\uFFFD"))
		}
	}
}
