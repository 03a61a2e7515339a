// Package clientset holds the typed clients of client-go for the API groups the
// gateway's receivers use. It is apart from k8sclient because any typed client
// links client-go's scheme, which registers every built-in API group at init:
// the node agent, which watches pods alone, does without (k8sclient.CoreV1).
package clientset

import (
	"fmt"
	"net/http"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Interface is the part of client-go's kubernetes.Interface this distribution
// uses: pods, events and configmaps (core/v1), events.k8s.io/v1, and leases for
// leader election (coordination.k8s.io/v1). *kubernetes.Clientset and the fake
// clientsets of tests implement it too.
//
// Components build a Clientset rather than client-go's full one: that one
// links the typed clients (and, with its informer factory, the informers) of
// every built-in API group, most of them dead code here that the binary
// carries and partly loads.
type Interface interface {
	CoreV1() corev1client.CoreV1Interface
	EventsV1() eventsv1client.EventsV1Interface
	CoordinationV1() coordinationv1client.CoordinationV1Interface
}

// Clientset holds the typed clients of Interface.
type Clientset struct {
	coreV1         *corev1client.CoreV1Client
	eventsV1       *eventsv1client.EventsV1Client
	coordinationV1 *coordinationv1client.CoordinationV1Client
}

var _ Interface = (*Clientset)(nil)

func (c *Clientset) CoreV1() corev1client.CoreV1Interface       { return c.coreV1 }
func (c *Clientset) EventsV1() eventsv1client.EventsV1Interface { return c.eventsV1 }
func (c *Clientset) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return c.coordinationV1
}

// NewForConfig is kubernetes.NewForConfig for the groups of Interface: the
// same defaults (client-go's user agent when unset), one transport and, when
// QPS is set without a RateLimiter, one token bucket shared by all groups.
func NewForConfig(c *rest.Config) (*Clientset, error) {
	cfg := *c
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	httpClient, err := rest.HTTPClientFor(&cfg)
	if err != nil {
		return nil, err
	}
	return NewForConfigAndClient(&cfg, httpClient)
}

// NewForConfigAndClient is kubernetes.NewForConfigAndClient for the groups of
// Interface.
func NewForConfigAndClient(c *rest.Config, httpClient *http.Client) (*Clientset, error) {
	cfg := *c
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	var cs Clientset
	var err error
	if cs.coreV1, err = corev1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.eventsV1, err = eventsv1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	if cs.coordinationV1, err = coordinationv1client.NewForConfigAndClient(&cfg, httpClient); err != nil {
		return nil, err
	}
	return &cs, nil
}
