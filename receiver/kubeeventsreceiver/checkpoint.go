package kubeeventsreceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient/clientset"
)

// errFenced means another replica wrote the shared checkpoint since we read it:
// we are no longer the only emitter and must stop.
var errFenced = errors.New("the shared checkpoint was written by another replica")

// checkpoints keeps, per stream, the resourceVersion up to which every Event has
// been emitted. It is written after the consumer accepted a batch, never
// before, so a crash can repeat the last batch but never skip one.
//
// Two places hold it: the storage extension (per replica, survives restarts),
// and, with leader election, a ConfigMap beside the Lease, so that a replica
// taking over resumes where the previous leader stopped rather than where it
// itself last led. Load takes the later of the two.
type checkpoints struct {
	local  storage.Client // nil without a storage extension
	shared *sharedCheckpoint
}

func getStorageClient(ctx context.Context, host component.Host, id *component.ID, self component.ID) (storage.Client, error) {
	if id == nil {
		return nil, nil
	}
	ext, ok := host.GetExtensions()[*id]
	if !ok {
		return nil, fmt.Errorf("storage: no extension %s in the service's extensions", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %s is not a storage extension", id)
	}
	return se.GetClient(ctx, component.KindReceiver, self, "")
}

// saveTimeout bounds a checkpoint write that outlives its stream's context.
const saveTimeout = 10 * time.Second

// saveContext lets a checkpoint write finish after shutdown began: what was
// emitted must be recorded, or the next start emits it again.
func saveContext(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	context.AfterFunc(c, cancel) // released when the timeout fires
	return c
}

func (c *checkpoints) load(ctx context.Context, key string) (string, error) {
	var local string
	if c.local != nil {
		b, err := c.local.Get(ctx, "rv/"+key)
		if err != nil {
			return "", fmt.Errorf("reading checkpoint %s from storage: %w", key, err)
		}
		local = string(b)
	}
	if c.shared == nil {
		return local, nil
	}
	shared, err := c.shared.get(ctx, key)
	if err != nil {
		return "", err
	}
	return maxRV(local, shared), nil
}

func (c *checkpoints) save(ctx context.Context, key, rv string) error {
	return c.saveTo(ctx, key, rv, true)
}

// saveTo writes the local checkpoint, and the shared one when shared is true.
// Progress over nothing emitted (deletions of expired Events, bookmarks) skips
// the shared write: a new leader replaying it emits nothing, and it would
// otherwise cost one ConfigMap update per expired Event.
func (c *checkpoints) saveTo(ctx context.Context, key, rv string, shared bool) error {
	if c.local != nil {
		if err := c.local.Set(ctx, "rv/"+key, []byte(rv)); err != nil {
			return fmt.Errorf("writing checkpoint %s to storage: %w", key, err)
		}
	}
	if shared && c.shared != nil {
		return c.shared.set(ctx, key, rv)
	}
	return nil
}

// sharedCheckpoint is a ConfigMap whose data maps stream keys to
// resourceVersions. Updates carry the ConfigMap's resourceVersion, so a deposed
// leader that still writes is refused (errFenced) instead of rewinding it.
type sharedCheckpoint struct {
	client          clientset.Interface
	namespace, name string

	mu sync.Mutex
	cm *corev1.ConfigMap // last read or written; nil before the first read
}

// reset forgets the cached ConfigMap: a new term of leadership reads afresh.
func (s *sharedCheckpoint) reset() {
	s.mu.Lock()
	s.cm = nil
	s.mu.Unlock()
}

func (s *sharedCheckpoint) get(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read(ctx); err != nil {
		return "", err
	}
	return s.cm.Data[configMapKey(key)], nil
}

func (s *sharedCheckpoint) read(ctx context.Context) error {
	if s.cm != nil {
		return nil
	}
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm, err = s.client.CoreV1().ConfigMaps(s.namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/component": "kube-events-checkpoint"}},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cm, err = s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("shared checkpoint configmap %s/%s: %w", s.namespace, s.name, err)
	}
	s.cm = cm
	return nil
}

func (s *sharedCheckpoint) set(ctx context.Context, key, rv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.read(ctx); err != nil {
		return err
	}
	k := configMapKey(key)
	if s.cm.Data[k] == rv {
		return nil
	}
	next := s.cm.DeepCopy()
	if next.Data == nil {
		next.Data = map[string]string{}
	}
	next.Data[k] = rv
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		s.cm = nil
		return fmt.Errorf("shared checkpoint configmap %s/%s: %w", s.namespace, s.name, errFenced)
	}
	if err != nil {
		return fmt.Errorf("shared checkpoint configmap %s/%s: %w", s.namespace, s.name, err)
	}
	s.cm = cm
	return nil
}

// configMapKey makes a stream key a valid ConfigMap key ([-._a-zA-Z0-9]+).
func configMapKey(key string) string {
	return strings.NewReplacer("/", "_").Replace(key)
}
