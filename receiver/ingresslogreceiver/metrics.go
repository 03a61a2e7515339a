package ingresslogreceiver

import (
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// seriesKey is one RED series: which ingress, which backend, which method,
// which class of answer.
type seriesKey struct {
	namespace, ingress, service, method, class string
}

type series struct {
	requests uint64
	timed    uint64 // requests with a duration
	sum      float64
	buckets  []uint64
}

// red aggregates the requests, errors and durations of every ingress as
// cumulative metrics since the receiver started.
type red struct {
	mu       sync.Mutex
	bounds   []float64
	max      int
	series   map[seriesKey]*series
	overflow *series
	start    pcommon.Timestamp
}

func newRED(bounds []float64, maxSeries int, start pcommon.Timestamp) *red {
	return &red{bounds: bounds, max: maxSeries, series: map[seriesKey]*series{}, start: start}
}

// add counts a batch; it returns how many requests went to the overflow series.
func (m *red) add(entries []entry, strs string) int {
	overflowed := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range entries {
		e := &entries[i]
		if e.bad {
			continue
		}
		// Substrings of the batch: the map keeps copies only of new keys.
		k := seriesKey{e.ns.in(strs), e.ingress.in(strs), e.svc.in(strs), methodNames[e.method], classNames[e.class]}
		s := m.series[k]
		if s == nil {
			if len(m.series) >= m.max {
				if m.overflow == nil {
					m.overflow = m.newSeries()
				}
				s = m.overflow
				overflowed++
			} else {
				s = m.newSeries()
				k.namespace, k.ingress, k.service = strings.Clone(k.namespace), strings.Clone(k.ingress), strings.Clone(k.service)
				m.series[k] = s
			}
		}
		s.requests++
		if e.duration >= 0 {
			s.timed++
			s.sum += e.duration
			b := 0
			for b < len(m.bounds) && e.duration > m.bounds[b] {
				b++
			}
			s.buckets[b]++
		}
	}
	return overflowed
}

func (m *red) newSeries() *series { return &series{buckets: make([]uint64, len(m.bounds)+1)} }

// collect writes every series as of now; nothing when no request was seen.
func (m *red) collect(now pcommon.Timestamp, scope string, version string) (pmetric.Metrics, bool) {
	md := pmetric.NewMetrics()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.series) == 0 && m.overflow == nil {
		return md, false
	}
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scope)
	sm.Scope().SetVersion(version)

	reqs := sm.Metrics().AppendEmpty()
	reqs.SetName(metricRequests)
	reqs.SetDescription("HTTP requests through the ingress, by backend, method and status class.")
	reqs.SetUnit(metricRequestsUnit)
	sum := reqs.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)

	dur := sm.Metrics().AppendEmpty()
	dur.SetName(metricDuration)
	dur.SetDescription("Duration of HTTP requests through the ingress, as the proxy measured them.")
	dur.SetUnit(metricDurationUnit)
	hist := dur.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)

	write := func(k *seriesKey, s *series) {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(m.start)
		dp.SetTimestamp(now)
		dp.SetIntValue(int64(s.requests))
		m.dimensions(dp.Attributes(), k)
		if s.timed == 0 {
			return
		}
		hp := hist.DataPoints().AppendEmpty()
		hp.SetStartTimestamp(m.start)
		hp.SetTimestamp(now)
		hp.SetCount(s.timed)
		hp.SetSum(s.sum)
		hp.ExplicitBounds().FromRaw(m.bounds)
		hp.BucketCounts().FromRaw(s.buckets)
		m.dimensions(hp.Attributes(), k)
	}
	for k, s := range m.series {
		write(&k, s)
	}
	if m.overflow != nil {
		write(nil, m.overflow)
	}
	return md, true
}

func (m *red) dimensions(attrs pcommon.Map, k *seriesKey) {
	if k == nil {
		attrs.PutBool(metricOverflowAttribute, true)
		return
	}
	put := func(key, v string) {
		if v != "" {
			attrs.PutStr(key, v)
		}
	}
	put(attrNamespace, k.namespace)
	put(attrIngress, k.ingress)
	put(attrService, k.service)
	put(attrMethod, k.method)
	put(attrStatusClass, k.class)
}
