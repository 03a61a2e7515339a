package kubeeventsreceiver

import (
	"context"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// requiredRBAC is what the receiver's service account needs; errors quote it.
const requiredRBAC = "list and watch on events (core and events.k8s.io, as configured), get on pods, " +
	"and with leader election get/create/update on leases (coordination.k8s.io) and configmaps in the lease namespace"

// hintFor says what to do about an API error, for the log line that reports it.
func hintFor(err error) string {
	switch {
	case apierrors.IsUnauthorized(err):
		return "the apiserver does not accept our credentials: check auth_type and the service account token or kubeconfig"
	case apierrors.IsForbidden(err):
		return "authenticated but not allowed: grant " + requiredRBAC
	case apierrors.IsNotFound(err):
		return "the API is not served: check apis against the cluster's version"
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err):
		return "the apiserver is overloaded or starting"
	}
	return "the apiserver is unreachable or failing: check its address, the network and its health"
}

func isNotFound(err error) bool      { return apierrors.IsNotFound(err) }
func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// isGone is the apiserver's 410: the resourceVersion asked for is compacted.
func isGone(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

func (r *eventsReceiver) newBackoff() *wait.Backoff {
	return &wait.Backoff{
		Duration: r.cfg.Backoff.InitialInterval,
		Factor:   2,
		Jitter:   0.2,
		Steps:    math.MaxInt32,
		Cap:      r.cfg.Backoff.MaxInterval,
	}
}

// sleepCtx waits d or until ctx ends; false means ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func metaOf(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// repeatFilter lets an error through to the log once, then once a minute while
// the same key repeats.
type repeatFilter struct {
	mu      sync.Mutex
	lastKey string
	lastAt  time.Time
}

func (f *repeatFilter) allow(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if key == f.lastKey && time.Since(f.lastAt) < time.Minute {
		return false
	}
	f.lastKey, f.lastAt = key, time.Now()
	return true
}

// podLookupFailed counts a failed pod lookup (not a 404) and logs it, once a
// minute per kind of error: the event goes out without the pod's labels.
func (r *eventsReceiver) podLookupFailed(err error) {
	r.telemetry.ReceiverKubeEventsPodLookupErrors.Add(context.Background(), 1)
	if r.podErrLog.allow(string(apierrors.ReasonForError(err))) {
		r.set.Logger.Warn("Pod enrichment: looking up a pod failed; its events go without its labels and owner "+
			"(repeats of this kind of error are logged once a minute, all are counted)",
			zap.String("hint", hintFor(err)), zap.Error(err))
	}
}
