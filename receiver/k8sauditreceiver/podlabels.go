package k8sauditreceiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
)

// PodLabelsConfig adds the labels of the pod an audit event acts on (pods/exec,
// pods/attach, a pod's create, update or delete) to its record, as
// k8s.pod.label.<key>: the alert about an exec then says which app and team the
// pod belongs to. contrib's k8sattributes processor would do this from the
// resource, but it does not build against this distribution's client-go, and
// audit events name their pod in record attributes, not on the resource.
type PodLabelsConfig struct {
	// Enabled watches the cluster's pods' metadata (list and watch on pods).
	Enabled bool `mapstructure:"enabled"`
	// AuthType is how to reach the API: serviceAccount (in a pod) or kubeConfig.
	AuthType string `mapstructure:"auth_type"`
}

const (
	podLabelPrefix = "k8s.pod.label."
	// How long Start waits for the first list of pods; past it, events go out
	// without labels until it arrives (a warning says so).
	podLabelsSyncTimeout = 30 * time.Second
)

func (c PodLabelsConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	if err := k8sclient.ValidateAuthType(c.AuthType, false); err != nil {
		return fmt.Errorf("pod_labels.%w", err)
	}
	return nil
}

// podLabels is a cache of every pod's labels, by namespace/name, from a
// metadata-only watch (no spec, no status: a few hundred bytes a pod).
type podLabels struct {
	store  cache.Store
	cancel context.CancelFunc
	done   chan struct{}
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

func startPodLabels(ctx context.Context, cfg *rest.Config, logger *zap.Logger) (*podLabels, error) {
	client, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("pod_labels: %w", err)
	}
	inf := metadatainformer.NewFilteredMetadataInformer(client, podsResource, metav1.NamespaceAll, 0,
		cache.Indexers{}, nil).Informer()
	// Keep what a lookup needs: name, namespace, labels.
	if err := inf.SetTransform(func(obj any) (any, error) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
				Name: m.Name, Namespace: m.Namespace, Labels: m.Labels, ResourceVersion: m.ResourceVersion}}, nil
		}
		return obj, nil
	}); err != nil {
		return nil, fmt.Errorf("pod_labels: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &podLabels{store: inf.GetStore(), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(p.done); inf.Run(runCtx.Done()) }()
	syncCtx, stop := context.WithTimeout(ctx, podLabelsSyncTimeout)
	defer stop()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		if ctx.Err() != nil {
			p.stop()
			return nil, errors.Join(errors.New("pod_labels: stopped before the first list of pods"), ctx.Err())
		}
		logger.Warn("pod_labels: the first list of pods has not arrived; audit events go without pod labels until it does",
			zap.Duration("waited", podLabelsSyncTimeout))
	}
	return p, nil
}

func (p *podLabels) stop() {
	p.cancel()
	<-p.done
}

// enrich adds the labels of each record's pod, from the cache, else (a pod
// being created is not there yet) from the request or response object.
func (p *podLabels) enrich(records plog.LogRecordSlice) {
	for i := 0; i < records.Len(); i++ {
		attrs := records.At(i).Attributes()
		name, ok := attrs.Get(attrPodName)
		if !ok {
			continue
		}
		ns, _ := attrs.Get(attrNamespace)
		if obj, found, _ := p.store.GetByKey(ns.Str() + "/" + name.Str()); found {
			for k, v := range obj.(*metav1.PartialObjectMetadata).Labels {
				attrs.PutStr(podLabelPrefix+k, v)
			}
			continue
		}
		for _, key := range []string{attrResponseObject, attrRequestObject} {
			if labels, ok := objectLabels(attrs, key); ok {
				for k, v := range labels.All() {
					attrs.PutStr(podLabelPrefix+k, v.AsString())
				}
				break
			}
		}
	}
}

// objectLabels is metadata.labels of the object the record carries under key.
func objectLabels(attrs pcommon.Map, key string) (pcommon.Map, bool) {
	obj, ok := attrs.Get(key)
	if !ok || obj.Type() != pcommon.ValueTypeMap {
		return pcommon.Map{}, false
	}
	meta, ok := obj.Map().Get("metadata")
	if !ok || meta.Type() != pcommon.ValueTypeMap {
		return pcommon.Map{}, false
	}
	labels, ok := meta.Map().Get("labels")
	if !ok || labels.Type() != pcommon.ValueTypeMap {
		return pcommon.Map{}, false
	}
	return labels.Map(), true
}
