package ebpfreceiver

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadata"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/probe"
)

// The kernel event counts a metrics pipeline gets: the same counts as the
// receiver's self-metrics (otelcol_receiver_ebpf_events_read and _lost), but
// as pipeline data, so that they travel with the events (the agent's queue, its
// mutual TLS) to the gateway, where Prometheus reads every node's.
const (
	metricEventsRead = "k8ssec.ebpf.events.read"
	metricEventsLost = "k8ssec.ebpf.events.lost"
	metricEventsUnit = "{event}"
)

// discardLogs takes the events when the receiver is in a metrics pipeline only.
var discardLogs, _ = consumer.NewLogs(func(context.Context, plog.Logs) error { return nil })

func (r *ebpfReceiver) metricsLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.MetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.nextMetrics.ConsumeMetrics(ctx, r.countMetrics(time.Now())); err != nil {
				r.set.Logger.Warn("the next consumer refused the kernel event counts", zap.Error(err))
			}
		}
	}
}

// countMetrics is every asked-for kind's events read and lost since the
// programs were loaded: cumulative sums, a point per kind even at 0.
func (r *ebpfReceiver) countMetrics(now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	sm.Scope().SetVersion(r.set.BuildInfo.Version)
	sum := func(name, desc string) pmetric.NumberDataPointSlice {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetDescription(desc)
		m.SetUnit(metricEventsUnit)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		return s.DataPoints()
	}
	read := sum(metricEventsRead, "Kernel events read from the ring buffer, by event kind (event.name).")
	lost := sum(metricEventsLost, "Kernel events dropped because the ring buffer was full, by event kind (event.name).")
	ts := pcommon.NewTimestampFromTime(now)
	r.lossMu.Lock()
	lastLost := r.lastLost
	r.lossMu.Unlock()
	for k := range probe.NumKinds {
		name := probe.Kind(k).String()
		if !slices.Contains(r.cfg.Events, name) {
			continue
		}
		for _, p := range []struct {
			dps pmetric.NumberDataPointSlice
			v   int64
		}{{read, r.readTotal[k].Load()}, {lost, int64(lastLost[k])}} {
			dp := p.dps.AppendEmpty()
			dp.SetStartTimestamp(r.started)
			dp.SetTimestamp(ts)
			dp.SetIntValue(p.v)
			dp.Attributes().PutStr("event.name", name)
		}
	}
	return md
}
