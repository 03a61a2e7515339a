package ingresslogreceiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"
	al "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/metadata"
)

// ingressReceiver is one input: it tails the files, feeds records to the
// logs pipeline and RED metrics to the metrics pipeline, whichever use it.
// The factory hands the same one to both.
type ingressReceiver struct {
	cfg       *Config
	set       receiver.Settings
	telemetry *metadata.TelemetryBuilder
	mapper    mapper // the settings every decoder's mapper copies
	decoders  sync.Pool

	nextLogs    consumer.Logs
	nextMetrics consumer.Metrics

	red     *red
	obs     *receiverhelper.ObsReport
	tailer  *filetail.Tailer
	files   fileStates
	parsed  metric.MeasurementOption
	badLine metric.MeasurementOption

	forget              func() // drops it from the factory's shared set
	startOnce, stopOnce sync.Once
	stop                chan struct{}
	done                sync.WaitGroup // the goroutines stop waits for
}

func newIngressReceiver(set receiver.Settings, cfg *Config) (*ingressReceiver, error) {
	trusted, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if _, err := al.New(cfg.Format, cfg.LogFormat); err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	r := &ingressReceiver{cfg: cfg, set: set, telemetry: tb, stop: make(chan struct{})}
	r.mapper.trusted = trusted
	for _, ns := range cfg.UpstreamNamespaces {
		r.mapper.namespaces = append(r.mapper.namespaces, []byte(ns))
	}
	r.decoders.New = func() any {
		p, _ := al.New(cfg.Format, cfg.LogFormat) // checked above
		return &decoder{parser: p, mapper: mapper{trusted: r.mapper.trusted, namespaces: r.mapper.namespaces},
			unwrap: unwrapper{mode: cfg.Container}}
	}
	r.files.init()
	outcome := func(o string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("format", cfg.Format), attribute.String("outcome", o)))
	}
	r.parsed, r.badLine = outcome("parsed"), outcome("malformed")
	return r, nil
}

// Start runs once, however many pipelines share the receiver.
func (r *ingressReceiver) Start(ctx context.Context, host component.Host) error {
	var err error
	r.startOnce.Do(func() { err = r.start(ctx, host) })
	return err
}

func (r *ingressReceiver) start(ctx context.Context, host component.Host) error {
	var err error
	r.obs, err = receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: "file", ReceiverCreateSettings: r.set,
	})
	if err != nil {
		return err
	}
	if r.nextMetrics != nil {
		r.red = newRED(r.cfg.Metrics.DurationBuckets, r.cfg.Metrics.MaxSeries, pcommon.NewTimestampFromTime(time.Now()))
		r.done.Add(1)
		go r.sendMetrics()
	}
	r.done.Add(1)
	go r.dropGonePieces()
	fc := r.cfg.Config
	fc.IncludeFilePath = true // the pod is read from the path
	r.tailer = filetail.New()
	if err := r.tailer.Start(ctx, host, r.set.TelemetrySettings, r.set.ID, fc, r.cfg.StorageID, r.emit); err != nil {
		// Through Shutdown's Once: the collector calls Shutdown after a
		// failed Start too, and a second close of stop would panic.
		return errors.Join(err, r.Shutdown(ctx))
	}
	r.set.Logger.Info("Tailing access logs", zap.Strings("include", r.cfg.Include), zap.String("format", r.cfg.Format),
		zap.String("start_at", r.cfg.StartAt), zap.Bool("checkpointed", r.cfg.StorageID != nil))
	return nil
}

// Shutdown runs once, whether Start ran, failed or never ran; the last
// metrics are sent on the way out.
func (r *ingressReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() { err = r.shutdown(ctx) })
	return err
}

func (r *ingressReceiver) shutdown(context.Context) error {
	var err error
	if r.tailer != nil {
		err = r.tailer.Shutdown()
	}
	close(r.stop)
	r.done.Wait()
	if r.forget != nil {
		r.forget()
	}
	r.telemetry.Shutdown()
	return err
}

// sendMetrics sends the cumulative RED metrics every interval and at the end.
func (r *ingressReceiver) sendMetrics() {
	defer r.done.Done()
	tick := time.NewTicker(r.cfg.Metrics.Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.flushMetrics()
		case <-r.stop:
			r.flushMetrics()
			return
		}
	}
}

// dropGonePieces drops, every partialGrace, the pieces of lines whose file
// is gone, so that pods coming and going do not pile up state.
func (r *ingressReceiver) dropGonePieces() {
	defer r.done.Done()
	tick := time.NewTicker(partialGrace)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			if n := r.files.dropGone(now); n > 0 {
				r.telemetry.ReceiverIngressLogPartialLinesDropped.Add(context.Background(), int64(n))
				r.set.Logger.Warn("Dropped the beginnings of lines split by the container runtime: their files are gone",
					zap.Int("lines", n))
			}
		case <-r.stop:
			return
		}
	}
}

func (r *ingressReceiver) flushMetrics() {
	md, ok := r.red.collect(pcommon.NewTimestampFromTime(time.Now()), metadata.ScopeName, r.set.BuildInfo.Version)
	if !ok {
		return
	}
	ctx := r.obs.StartMetricsOp(context.Background())
	err := r.nextMetrics.ConsumeMetrics(ctx, md)
	r.obs.EndMetricsOp(ctx, "access_log", md.DataPointCount(), err)
	if err != nil {
		r.set.Logger.Warn("Pipeline refused the ingress RED metrics; the next interval sends them again, cumulative", zap.Error(err))
	}
}
