package kubeeventsreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

func (r *eventsReceiver) countReceived(ctx context.Context, api string, n int) {
	r.telemetry.ReceiverKubeEventsEventsReceived.Add(ctx, int64(n),
		metric.WithAttributeSet(attribute.NewSet(attribute.String("api", api))))
}

// filter drops occurrences already emitted: at or below the checkpoint (a
// relist after 410 Gone), or already in the dedupe cache (the other API's copy,
// a replayed watch). What it keeps is remembered as emitted.
func (r *eventsReceiver) filter(ctx context.Context, events []*corev1.Event, checkpoint string) []*corev1.Event {
	out := events[:0:0]
	var dup int64
	for _, e := range events {
		if !newerRV(e.ResourceVersion, checkpoint) {
			dup++
			continue
		}
		if seen, _ := r.dedupe.ContainsOrAdd(dedupeKey(e), struct{}{}); seen {
			dup++
			continue
		}
		out = append(out, e)
	}
	if dup > 0 {
		r.telemetry.ReceiverKubeEventsEventsDeduplicated.Add(ctx, dup)
	}
	return out
}

// emit hands events to the next consumer as one batch. A refused batch is
// retried with backoff (the checkpoint does not move meanwhile) unless the
// refusal is permanent, which is logged and the batch dropped.
func (r *eventsReceiver) emit(ctx context.Context, events []*corev1.Event) error {
	if len(events) == 0 {
		return nil
	}
	r.pods.prefetch(ctx, events)
	logs := r.toLogs(events)
	bo := r.newBackoff()
	for {
		octx := r.obs.StartLogsOp(ctx)
		err := r.next.ConsumeLogs(octx, logs)
		r.obs.EndLogsOp(octx, metadata.Type.String(), len(events), err)
		switch {
		case err == nil:
			r.telemetry.ReceiverKubeEventsEventsEmitted.Add(ctx, int64(len(events)))
			return nil
		case consumererror.IsPermanent(err):
			r.set.Logger.Error("The pipeline refused Kubernetes Events permanently: dropped", zap.Int("events", len(events)), zap.Error(err))
			return nil
		}
		delay := bo.Step()
		r.set.Logger.Warn("The pipeline refused Kubernetes Events: retrying", zap.Int("events", len(events)),
			zap.Error(err), zap.Duration("retry_in", delay))
		if !sleepCtx(ctx, delay) {
			// Not emitted: a later term of leadership must not take them for
			// repeats when it resumes from the checkpoint.
			for _, e := range events {
				r.dedupe.Remove(dedupeKey(e))
			}
			return ctx.Err()
		}
	}
}

// toLogs maps a batch into one resource and scope.
func (r *eventsReceiver) toLogs(events []*corev1.Event) plog.Logs {
	logs := plog.NewLogs()
	sl := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	records := sl.LogRecords()
	records.EnsureCapacity(len(events))
	now := pcommon.NewTimestampFromTime(time.Now())
	for _, e := range events {
		mapEvent(e, r.pods.lookup(&e.InvolvedObject), now, records.AppendEmpty())
	}
	return logs
}
