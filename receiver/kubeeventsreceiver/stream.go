package kubeeventsreceiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// listPageSize bounds one list response; a relist pages through all Events.
const listPageSize = 500

// stream lists and watches the Events of one API in one namespace ("" = all)
// and keeps its own checkpoint.
type stream struct {
	r         *eventsReceiver
	api       string
	namespace string
}

func (s *stream) key() string {
	ns := s.namespace
	if ns == "" {
		ns = "_all"
	}
	return s.api + "." + ns
}

func (s *stream) where() string {
	if s.namespace == "" {
		return s.api + " Events in all namespaces"
	}
	return s.api + " Events in namespace " + s.namespace
}

// run resumes from the checkpoint and streams until ctx ends. It returns an
// error only when fenced out by another replica; API errors are retried.
func (s *stream) run(ctx context.Context) error {
	r := s.r
	bo := r.newBackoff()
	var rv string     // where the next watch starts; "" = list first
	var loaded bool   // the checkpoint was read
	var relist string // why the next list happens: "gone"; "" = no list unless rv is ""
	for ctx.Err() == nil {
		var err error
		switch {
		case !loaded:
			rv, err = r.ckpt.load(ctx, s.key())
			loaded = err == nil
			if loaded && rv != "" {
				r.set.Logger.Info("Resuming from checkpoint", zap.String("stream", s.where()), zap.String("resource_version", rv))
			}
		case rv == "" || relist != "":
			// A first start emits per start_at; after a 410 everything newer
			// than the checkpoint is emitted, the rest counted as deduplicated.
			reason := relist
			if reason == "" {
				reason = "start"
			}
			rv, err = s.relist(ctx, reason, rv)
			if err == nil {
				relist = ""
			}
		default:
			rv, err = s.watch(ctx, rv)
			if isGone(err) {
				r.set.Logger.Warn("The checkpointed resourceVersion is compacted (410 Gone): relisting; "+
					"Events newer than it are emitted once, older ones were already", zap.String("stream", s.where()),
					zap.String("resource_version", rv))
				relist = "gone"
				continue
			}
		}
		if errors.Is(err, errFenced) {
			return err
		}
		if err != nil && ctx.Err() == nil {
			delay := bo.Step()
			r.telemetry.ReceiverKubeEventsAPIErrors.Add(ctx, 1)
			r.set.Logger.Error("Kubernetes Events: API call failed; retrying with backoff",
				zap.String("stream", s.where()), zap.String("hint", hintFor(err)), zap.Error(err),
				zap.Duration("retry_in", delay))
			if !sleepCtx(ctx, delay) {
				return nil
			}
			continue
		}
		bo = r.newBackoff()
	}
	return nil
}

// relist lists every Event and emits, in resourceVersion order, those after
// checkpoint (all of them on a first start at beginning, none at end). The
// checkpoint advances after each emitted batch, so a crash mid-relist resumes
// inside it. It returns the list's resourceVersion, where the watch starts.
func (s *stream) relist(ctx context.Context, reason, checkpoint string) (string, error) {
	r := s.r
	first := checkpoint == "" && reason == "start"
	if first && r.cfg.StartAt == startAtEnd {
		// Only the current resourceVersion is needed.
		_, listRV, _, err := s.list(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			err = r.ckpt.save(ctx, s.key(), listRV)
		}
		return listRV, err
	}
	r.telemetry.ReceiverKubeEventsRelists.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", reason))))
	var all []*corev1.Event
	opts := metav1.ListOptions{Limit: listPageSize}
	var listRV string
	for {
		items, rv, cont, err := s.list(ctx, opts)
		if err != nil {
			return checkpoint, fmt.Errorf("listing %s: %w", s.where(), err)
		}
		if listRV == "" {
			listRV = rv
		}
		all = append(all, items...)
		if cont == "" {
			break
		}
		opts.Continue = cont
	}
	r.countReceived(ctx, s.api, len(all))
	slices.SortFunc(all, func(a, b *corev1.Event) int { return compareRV(a.ResourceVersion, b.ResourceVersion) })
	for start := 0; start < len(all); start += r.cfg.MaxBatchSize {
		chunk := all[start:min(start+r.cfg.MaxBatchSize, len(all))]
		fresh := r.filter(ctx, chunk, checkpoint)
		if err := r.emit(ctx, fresh); err != nil {
			return checkpoint, err
		}
		last := chunk[len(chunk)-1].ResourceVersion
		if newerRV(last, checkpoint) {
			if err := r.ckpt.save(saveContext(ctx), s.key(), last); err != nil {
				return checkpoint, err
			}
			checkpoint = last
		}
	}
	return listRV, r.ckpt.save(ctx, s.key(), listRV)
}

// watch streams from rv, emitting batch by batch, and returns the
// resourceVersion reached: when the apiserver ends the watch (normal, every few
// minutes), on an error, or with a 410 when rv is compacted.
func (s *stream) watch(ctx context.Context, rv string) (string, error) {
	r := s.r
	timeout := int64(300 + rand.IntN(300)) // spread the replicas' rewatch load
	w, err := s.openWatch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
	if err != nil {
		return rv, fmt.Errorf("watching %s from resourceVersion %s: %w", s.where(), rv, err)
	}
	defer w.Stop()
	stop := make(chan struct{})
	defer close(stop) // before w.Stop: unblocks readAhead
	results := readAhead(w, r.cfg.MaxBatchSize, stop)
	batch := make([]*corev1.Event, 0, r.cfg.MaxBatchSize)
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok = <-results:
		}
		batch = batch[:0]
		next := rv
		var werr error
		// Take what is already queued, up to a batch: one ConsumeLogs and one
		// checkpoint write per batch, not per event, under a burst.
	drain:
		for ok {
			switch ev.Type {
			case watch.Error:
				werr = apierrors.FromObject(ev.Object)
				break drain
			case watch.Added, watch.Modified, watch.Bookmark, watch.Deleted:
				if m, merr := meta.Accessor(ev.Object); merr == nil {
					next = m.GetResourceVersion()
				}
				if ev.Type == watch.Added || ev.Type == watch.Modified {
					if e, isEvent := asCoreEvent(ev.Object); isEvent {
						batch = append(batch, e)
					}
				}
			}
			if len(batch) == cap(batch) {
				break
			}
			select {
			case ev, ok = <-results:
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			r.countReceived(ctx, s.api, len(batch))
			if err := r.emit(ctx, r.filter(ctx, batch, rv)); err != nil {
				return rv, err
			}
		}
		if next != rv {
			// Emitted is emitted: record it even when shutdown began meanwhile.
			if err := r.ckpt.saveTo(saveContext(ctx), s.key(), next, len(batch) > 0); err != nil {
				return rv, err
			}
			rv = next
		}
		if werr != nil {
			return rv, werr
		}
		if !ok {
			return rv, nil
		}
	}
}

// readAhead keeps reading the watch, up to n events, while the stream emits
// and checkpoints: the next batch takes all that arrived meanwhile. client-go's
// result channel is unbuffered, so without it a batch held one or two events
// and a burst cost a checkpoint write per event, which client-go's default
// rate limit (5/s) turned into seconds of lag.
func readAhead(w watch.Interface, n int, stop <-chan struct{}) <-chan watch.Event {
	out := make(chan watch.Event, n)
	go func() {
		defer close(out)
		for ev := range w.ResultChan() {
			select {
			case out <- ev:
			case <-stop:
				return
			}
		}
	}()
	return out
}

// list returns one page as core/v1 Events.
func (s *stream) list(ctx context.Context, opts metav1.ListOptions) ([]*corev1.Event, string, string, error) {
	switch s.api {
	case apiEvents:
		l, err := s.r.client.EventsV1().Events(s.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", "", err
		}
		out := make([]*corev1.Event, len(l.Items))
		for i := range l.Items {
			out[i] = fromEventsV1(&l.Items[i])
		}
		return out, l.ResourceVersion, l.Continue, nil
	default:
		l, err := s.r.client.CoreV1().Events(s.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", "", err
		}
		out := make([]*corev1.Event, len(l.Items))
		for i := range l.Items {
			out[i] = &l.Items[i]
		}
		return out, l.ResourceVersion, l.Continue, nil
	}
}

func (s *stream) openWatch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if s.api == apiEvents {
		return s.r.client.EventsV1().Events(s.namespace).Watch(ctx, opts)
	}
	return s.r.client.CoreV1().Events(s.namespace).Watch(ctx, opts)
}

// compareRV orders resourceVersions numerically (see parseRV).
func compareRV(a, b string) int {
	x, _ := parseRV(a)
	y, _ := parseRV(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
