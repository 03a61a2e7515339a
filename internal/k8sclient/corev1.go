package k8sclient

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// coreScheme knows core/v1 alone. client-go's typed clients use its scheme
// package instead, which registers every built-in API group at init: the node
// agent, which only watches its pods, would carry and initialize them all
// (docs/builds.md).
var (
	coreScheme = runtime.NewScheme()
	coreParams = runtime.NewParameterCodec(coreScheme)
)

func init() { utilruntime.Must(corev1.AddToScheme(coreScheme)) }

// CoreV1 is a REST client for the core/v1 API group, for components that only
// list and watch its objects.
type CoreV1 struct {
	rest rest.Interface
}

// NewCoreV1 builds it from c, with client-go's user agent when c has none.
func NewCoreV1(c *rest.Config) (*CoreV1, error) {
	cfg := *c
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(coreScheme).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(&cfg)
	if err != nil {
		return nil, err
	}
	return &CoreV1{rest: rc}, nil
}

// Pods lists and watches the pods of every namespace, only those fieldSelector
// selects unless it is "", as client-go's typed pod client does.
func (c *CoreV1) Pods(fieldSelector string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if fieldSelector != "" {
				o.FieldSelector = fieldSelector
			}
			var pods corev1.PodList
			err := c.rest.Get().Resource("pods").VersionedParams(&o, coreParams).
				Timeout(timeout(o)).Do(ctx).Into(&pods)
			return &pods, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if fieldSelector != "" {
				o.FieldSelector = fieldSelector
			}
			o.Watch = true
			return c.rest.Get().Resource("pods").VersionedParams(&o, coreParams).
				Timeout(timeout(o)).Watch(ctx)
		},
	}
}

// timeout is the request's own timeout, as the typed clients set it.
func timeout(o metav1.ListOptions) time.Duration {
	if o.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*o.TimeoutSeconds) * time.Second
}
