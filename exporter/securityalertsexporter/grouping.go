package securityalertsexporter

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// attrGroupCount marks a record the grouper re-sent: the number of alerts of
// its group folded since the group's last message. Such a record is sent
// as it is, never grouped again.
const attrGroupCount = "k8ssec.alerts.group_count"

// attrAdmitted marks an alert handed back for a retry after grouping let it
// through once: the retry must not fold it into its own group.
const attrAdmitted = "k8ssec.alerts.admitted"

// grouper folds chat alerts: the first alert of a group (same rule, same
// group_by values) is sent at once; the ones that follow within
// group_interval are counted and dropped, and when the interval is over one
// message carries their count. That message goes back through the
// exporter's queue and retries; the folded alerts wait in memory only.
type grouper struct {
	by       []string
	interval time.Duration
	resend   func(context.Context, plog.Logs) error // the exporter's own ConsumeLogs
	direct   func(context.Context, plog.Logs) error // pushLogs, for shutdown, when the queue is closed
	now      func() time.Time

	mu     sync.Mutex
	groups map[string]*group
	stop   chan struct{}
	done   chan struct{}
}

type group struct {
	lastSent time.Time
	folded   int
	last     plog.Logs // the latest folded alert, re-sent with the count
}

func newGrouper(cfg GroupingConfig) *grouper {
	return &grouper{by: cfg.GroupBy, interval: cfg.GroupInterval, now: time.Now, groups: map[string]*group{}}
}

func (g *grouper) key(a *Alert) string {
	var b strings.Builder
	b.WriteString(a.Rule)
	for _, k := range g.by {
		b.WriteByte(0)
		b.WriteString(a.Attr(k))
	}
	return b.String()
}

// admit reports whether an alert is sent now; if not, it is folded into its
// group, and its resource and record are kept for the group's message.
func (g *grouper) admit(a *Alert, res plog.ResourceLogs, lr plog.LogRecord) bool {
	if a.GroupCount > 0 || a.admitted {
		return true
	}
	k := g.key(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	gr, ok := g.groups[k]
	if !ok || now.Sub(gr.lastSent) >= g.interval && gr.folded == 0 {
		g.groups[k] = &group{lastSent: now}
		return true
	}
	gr.folded++
	gr.last = plog.NewLogs()
	rl := gr.last.ResourceLogs().AppendEmpty()
	res.Resource().CopyTo(rl.Resource())
	lr.CopyTo(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
	return false
}

// flush re-sends each group whose interval is over with its count, and
// forgets groups idle for two intervals.
func (g *grouper) flush(ctx context.Context, send func(context.Context, plog.Logs) error) {
	var due []plog.Logs
	g.mu.Lock()
	now := g.now()
	for k, gr := range g.groups {
		switch {
		case gr.folded > 0 && now.Sub(gr.lastSent) >= g.interval:
			gr.last.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().PutInt(attrGroupCount, int64(gr.folded))
			due = append(due, gr.last)
			gr.lastSent, gr.folded, gr.last = now, 0, plog.Logs{}
		case gr.folded == 0 && now.Sub(gr.lastSent) >= 2*g.interval:
			delete(g.groups, k)
		}
	}
	g.mu.Unlock()
	for _, ld := range due {
		_ = send(ctx, ld) // the queue takes it; a full queue is counted by exporterhelper
	}
}

func (g *grouper) start() {
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	tick := time.NewTicker(max(g.interval/4, 10*time.Millisecond))
	go func() {
		defer close(g.done)
		defer tick.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-tick.C:
				g.flush(context.Background(), g.resend)
			}
		}
	}()
}

// shutdown stops the timer and sends what is folded, directly (the queue
// is closed by then), so that a stop reports every alert it saw.
func (g *grouper) shutdown(ctx context.Context) {
	if g.stop == nil {
		return
	}
	close(g.stop)
	<-g.done
	g.mu.Lock()
	g.now = func() time.Time { return time.Now().Add(g.interval) }
	g.mu.Unlock()
	g.flush(ctx, g.direct)
}
