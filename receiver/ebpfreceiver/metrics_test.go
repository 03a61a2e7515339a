package ebpfreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadatatest"
)

// One receiver serves a logs and a metrics pipeline of the same config: the
// programs load once, and the metrics pipeline gets, per asked-for kind, the
// events the logs pipeline got (read) and the kernel's losses, from 0.
func TestMetricsPipelineCountsTheEvents(t *testing.T) {
	requireRoot(t)
	cg := makeCgroup(t)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.RingBufferSize = 4 << 20
	cfg.CgroupPath = cg.path
	cfg.Events = []string{"process.exec", "process.exit"}
	cfg.MetricsInterval = 100 * time.Millisecond
	require.NoError(t, cfg.Validate())
	set := metadatatest.NewSettings(newTelemetry(t))
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	require.Same(t, lr, mr, "one receiver for both pipelines")
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))

	for range 3 {
		require.NoError(t, cg.command("/bin/true").Run())
	}
	var counts map[string]map[string]int64
	require.Eventually(t, func() bool {
		all := metrics.AllMetrics()
		if len(all) == 0 {
			return false
		}
		counts = countsOf(all[len(all)-1])
		return counts[metricEventsRead]["process.exec"] >= 3 && counts[metricEventsRead]["process.exit"] >= 3 &&
			counts[metricEventsRead]["process.exec"] == int64(len(find(logs, "process.exec", -1)))
	}, 10*time.Second, 50*time.Millisecond, "counts %v, exec records %d", counts, len(find(logs, "process.exec", -1)))
	assert.Equal(t, map[string]int64{"process.exec": 0, "process.exit": 0}, counts[metricEventsLost], "a point per asked-for kind, from 0")
	assert.NotContains(t, counts[metricEventsRead], "file.open", "only the kinds asked for")

	require.NoError(t, lr.Shutdown(context.Background()))
	require.NoError(t, mr.Shutdown(context.Background()))
	// The config's receiver is gone: a new pipeline gets a new one.
	again, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	assert.NotSame(t, mr, again)
}

// countsOf reads one batch: metric name -> event.name -> value.
func countsOf(md pmetric.Metrics) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := range ms.Len() {
		m := ms.At(i)
		out[m.Name()] = map[string]int64{}
		for j := range m.Sum().DataPoints().Len() {
			dp := m.Sum().DataPoints().At(j)
			kind, _ := dp.Attributes().Get("event.name")
			out[m.Name()][kind.Str()] = dp.IntValue()
		}
	}
	return out
}

func TestMetricsIntervalMustBePositive(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.MetricsInterval = 0
	assert.ErrorContains(t, cfg.Validate(), "metrics_interval 0s: must be positive")
}
