package kubeeventsreceiver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient/clientset"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/podidentity"
)

const attrPodLabelPrefix = "k8s.pod.label."

// podMeta is what events about a pod are enriched with: its labels (as
// ready-made attribute pairs) and owning workload. Immutable once cached.
type podMeta struct {
	labels     []labelKV // sorted by key, at most PodsConfig.MaxLabels
	ownerAttr  string    // k8s.replicaset.name, k8s.daemonset.name ...
	ownerName  string
	deployment string // from a ReplicaSet owner and the pod-template-hash label
}

type labelKV struct{ attr, value string }

func (p *podMeta) putAttributes(a pcommon.Map) {
	if p == nil {
		return
	}
	if p.ownerAttr != "" {
		a.PutStr(p.ownerAttr, p.ownerName)
	}
	if p.deployment != "" {
		a.PutStr("k8s.deployment.name", p.deployment)
	}
	for _, l := range p.labels {
		a.PutStr(l.attr, l.value)
	}
}

// podCache remembers pods by uid, filled by a GET on the first event about
// each: Events name few distinct pods at a time, so a GET per new pod is far
// cheaper than an informer holding every pod of the cluster. Bounded in entries
// and age; pods that are gone are remembered as nil so that a burst about a
// deleted pod does not GET once per event.
//
// The GETs run on fetchers with their own client (its own rate limiter), never
// in the watch loop: a batch waits for its pods' lookups at most wait, and a
// burst of new pods can neither hold the stream back for long nor use up the
// token bucket that checkpoint writes draw from.
//
// Entries expire by their own timestamp on read (golang-lru's expirable cache
// runs a goroutine that cannot be stopped).
type podCache struct {
	client    clientset.Interface
	maxLabels int
	ttl       time.Duration
	wait      time.Duration
	cache     *lru.Cache[string, podEntry]
	failed    func(error) // a lookup failed other than with 404

	mu       sync.Mutex
	inflight map[string]chan struct{} // key -> closed when its lookup ended
	queue    chan podFetch
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

type podEntry struct {
	meta  *podMeta // nil: the pod is gone, or the lookup failed
	until time.Time
}

type podFetch struct {
	key  string
	ref  corev1.ObjectReference
	done chan struct{}
}

const (
	// podFetchers bounds the concurrent pod GETs; the client's rate limiter paces them.
	podFetchers = 4
	// podQueueSize bounds the lookups waiting for a fetcher; beyond, events go
	// without enrichment until the queue drains.
	podQueueSize = 1024
	// podErrorRetry is how long a failed lookup is not retried: a pod the API
	// refuses (403, timeouts) must not cost a GET per event.
	podErrorRetry = 10 * time.Second
	// podGetTimeout bounds one GET: a hung request must not hold a fetcher.
	podGetTimeout = 10 * time.Second
)

func newPodCache(client clientset.Interface, cfg PodsConfig, failed func(error)) *podCache {
	c, _ := lru.New[string, podEntry](cfg.CacheSize) // size > 0: Validate
	return &podCache{client: client, maxLabels: cfg.MaxLabels, ttl: cfg.TTL, wait: cfg.LookupTimeout, cache: c,
		failed: failed, inflight: map[string]chan struct{}{}, queue: make(chan podFetch, podQueueSize)}
}

// start runs the fetchers until shutdown.
func (c *podCache) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	for range podFetchers {
		c.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case f := <-c.queue:
					c.fetch(ctx, f)
				}
			}
		})
	}
}

func (c *podCache) shutdown() {
	if c != nil && c.stop != nil {
		c.stop()
		c.wg.Wait()
	}
}

func (c *podCache) add(key string, p *podMeta) {
	c.cache.Add(key, podEntry{meta: p, until: time.Now().Add(c.ttl)})
}

// podKey is the cache key of a pod reference; ok is false for anything else.
func podKey(ref *corev1.ObjectReference) (key string, ok bool) {
	if ref.Kind != "Pod" || ref.Name == "" || ref.Namespace == "" {
		return "", false
	}
	if ref.UID != "" {
		return string(ref.UID), true
	}
	return ref.Namespace + "/" + ref.Name, true
}

// lookup returns what the cache holds about the pod ref names: nil when it is
// gone, renamed (another uid), not looked up yet, or the API cannot say. It
// never calls the API; prefetch does.
func (c *podCache) lookup(ref *corev1.ObjectReference) *podMeta {
	if c == nil {
		return nil
	}
	key, ok := podKey(ref)
	if !ok {
		return nil
	}
	if e, ok := c.cache.Get(key); ok && time.Now().Before(e.until) {
		return e.meta
	}
	return nil
}

// prefetch looks up the pods of events that the cache does not hold, and waits
// for them at most c.wait (or until ctx ends). Lookups that take longer go on
// and serve later events.
func (c *podCache) prefetch(ctx context.Context, events []*corev1.Event) {
	if c == nil {
		return
	}
	var pending []chan struct{}
	now := time.Now()
	for _, e := range events {
		key, ok := podKey(&e.InvolvedObject)
		if !ok {
			continue
		}
		if ce, ok := c.cache.Peek(key); ok && now.Before(ce.until) {
			continue
		}
		if done := c.request(key, &e.InvolvedObject); done != nil {
			pending = append(pending, done)
		}
	}
	if len(pending) == 0 {
		return
	}
	timer := time.NewTimer(c.wait)
	defer timer.Stop()
	for _, done := range pending {
		select {
		case <-done:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// request queues a lookup of key unless one is under way; nil when the queue is full.
func (c *podCache) request(key string, ref *corev1.ObjectReference) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if done, ok := c.inflight[key]; ok {
		return done
	}
	f := podFetch{key: key, ref: *ref, done: make(chan struct{})}
	select {
	case c.queue <- f:
		c.inflight[key] = f.done
		return f.done
	default:
		return nil
	}
}

// fetch GETs one pod and caches the answer; errors other than 404 are cached
// for podErrorRetry only, and reported.
func (c *podCache) fetch(ctx context.Context, f podFetch) {
	defer func() {
		c.mu.Lock()
		delete(c.inflight, f.key)
		c.mu.Unlock()
		close(f.done)
	}()
	gctx, cancel := context.WithTimeout(ctx, podGetTimeout)
	defer cancel()
	pod, err := c.client.CoreV1().Pods(f.ref.Namespace).Get(gctx, f.ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.add(f.key, nil)
	case err != nil:
		if ctx.Err() == nil {
			c.cache.Add(f.key, podEntry{until: time.Now().Add(podErrorRetry)})
			c.failed(fmt.Errorf("getting pod %s/%s: %w", f.ref.Namespace, f.ref.Name, err))
		}
	case f.ref.UID != "" && pod.UID != f.ref.UID:
		c.add(f.key, nil) // a new pod of the same name
	default:
		c.add(f.key, c.metaOf(pod))
	}
}

func (c *podCache) metaOf(pod *corev1.Pod) *podMeta {
	p := &podMeta{}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		p.ownerAttr, p.ownerName = podidentity.OwnerAttr(ref.Kind), ref.Name
		if p.ownerAttr == "" {
			p.ownerName = ""
		}
		if hash := pod.Labels["pod-template-hash"]; ref.Kind == "ReplicaSet" && hash != "" {
			p.deployment, _ = strings.CutSuffix(ref.Name, "-"+hash)
			if p.deployment == ref.Name {
				p.deployment = ""
			}
		}
	}
	keys := make([]string, 0, len(pod.Labels))
	for k := range pod.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > c.maxLabels {
		keys = keys[:c.maxLabels]
	}
	p.labels = make([]labelKV, len(keys))
	for i, k := range keys {
		// Copies: the decoded pod is dropped, its strings would pin its buffers.
		p.labels[i] = labelKV{strings.Clone(attrPodLabelPrefix + k), strings.Clone(pod.Labels[k])}
	}
	p.ownerName = strings.Clone(p.ownerName)
	p.deployment = strings.Clone(p.deployment)
	return p
}
