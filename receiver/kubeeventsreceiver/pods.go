package kubeeventsreceiver

import (
	"context"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
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

// podCache remembers pods by uid, filled lazily by a GET on the first event
// about each: Events name few distinct pods at a time, so a GET per new pod is
// far cheaper than an informer holding every pod of the cluster. Bounded in
// entries and age; pods that are gone are remembered as nil so that a burst
// about a deleted pod does not GET once per event.
//
// Entries expire by their own timestamp on read (golang-lru's expirable cache
// runs a goroutine that cannot be stopped).
type podCache struct {
	client    k8sclient.Interface
	maxLabels int
	ttl       time.Duration
	cache     *lru.Cache[string, podEntry]
}

type podEntry struct {
	meta    *podMeta // nil: the pod is gone
	fetched time.Time
}

func newPodCache(client k8sclient.Interface, cfg PodsConfig) *podCache {
	c, _ := lru.New[string, podEntry](cfg.CacheSize) // size > 0: Validate
	return &podCache{client: client, maxLabels: cfg.MaxLabels, ttl: cfg.TTL, cache: c}
}

func (c *podCache) add(key string, p *podMeta) {
	c.cache.Add(key, podEntry{meta: p, fetched: time.Now()})
}

// lookup returns the pod ref names, or nil when it is gone, renamed (another
// uid) or the API cannot say; API errors other than NotFound are not cached.
func (c *podCache) lookup(ctx context.Context, ref *corev1.ObjectReference) *podMeta {
	if c == nil || ref.Kind != "Pod" || ref.Name == "" || ref.Namespace == "" {
		return nil
	}
	key := string(ref.UID)
	if key == "" {
		key = ref.Namespace + "/" + ref.Name
	}
	if e, ok := c.cache.Get(key); ok && time.Since(e.fetched) < c.ttl {
		return e.meta
	}
	pod, err := c.client.CoreV1().Pods(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.add(key, nil)
		return nil
	case err != nil:
		return nil
	case ref.UID != "" && pod.UID != ref.UID:
		c.add(key, nil) // a new pod of the same name
		return nil
	}
	p := c.metaOf(pod)
	c.add(key, p)
	return p
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
