// Package podidentity maps the cgroup v2 id that eBPF events carry to the
// container and Kubernetes pod of the task: cgroup id -> cgroup path (a walk
// of the cgroup2 hierarchy, cached) -> container id and runtime (the naming of
// containerd, CRI-O, Docker and Podman under the systemd and cgroupfs drivers)
// -> pod (an informer on this node's pods, indexed by the containerIDs of
// their container statuses). Without a Kubernetes client it still reports the
// container id, runtime, pod UID and whether the task is a host process.
//
//	core, err := k8sclient.NewCoreV1(restConfig)
//	r := podidentity.New(podidentity.Options{Client: core, NodeName: node})
//	if err := r.Start(ctx); err != nil { ... }
//	defer r.Stop()
//	id := r.Lookup(cgroupID)
//	id.Attributes(attrs)
package podidentity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
)

// Defaults for Options' zero values.
const (
	DefaultCacheSize   = 16384
	DefaultMaxLabels   = 32
	DefaultSyncTimeout = 10 * time.Second
	// MinWalkInterval bounds how often a miss re-walks the cgroup hierarchy.
	MinWalkInterval = time.Second
)

// ErrNoCgroup2 is returned (wrapped) by Start when no cgroup v2 hierarchy is
// mounted; Lookup then resolves nothing but LookupPID still works.
var ErrNoCgroup2 = errors.New("no cgroup2 hierarchy")

// ErrNotSynced is returned (wrapped, with the watch's last error) by Start
// when the pod informer has not synced within SyncTimeout: the apiserver is
// unreachable or refuses the watch. The resolver is usable: containers are
// resolved from their cgroups, the informer keeps retrying, and pods are known
// once it syncs (Synced).
var ErrNotSynced = errors.New("the pod watch has not synced")

// Options configures a Resolver.
type Options struct {
	// Client watches pods; nil means no cluster (no Pod in identities).
	Client *k8sclient.CoreV1
	// NodeName restricts the watch to pods with spec.nodeName=NodeName; ""
	// watches all pods of the cluster (tests, single-node setups).
	NodeName string
	// CgroupRoot is the cgroup2 mount point; "" finds it in /proc/self/mountinfo.
	CgroupRoot string
	// CacheSize bounds the cgroup id -> path cache (entries); 0 means DefaultCacheSize.
	CacheSize int
	// MaxLabels bounds the labels copied per pod; 0 means DefaultMaxLabels.
	MaxLabels int
	// SyncTimeout bounds Start's wait for the pod informer; 0 means
	// DefaultSyncTimeout. Past it Start returns ErrNotSynced and the informer
	// goes on trying.
	SyncTimeout time.Duration
	// ProcRoot is where LookupPID reads PID/cgroup; "" means /proc.
	ProcRoot string
	// OnLateSync, when set, is called once when a pod watch that Start gave
	// up waiting for (ErrNotSynced) syncs after all.
	OnLateSync func()

	noHandles bool // misses walk instead of opening cgroups by handle (tests)
}

// Resolver answers Lookup and LookupPID. Safe for concurrent use.
type Resolver struct {
	opts       Options
	root       string // cgroup2 mount point, "" if none
	rootPrefix string // the mount's root in the hierarchy ("/" normally)

	cache    *lru.Cache[uint64, cgEntry]
	handles  atomic.Pointer[cgroupHandles] // nil: walk only
	walkMu   sync.Mutex
	lastWalk time.Time
	walks    atomic.Int64

	index  *podIndex // nil without a client
	synced func() bool
	// podsSynced is set once the pod watch has synced: Lookup reads it per
	// event, where the informer's HasSynced would take its locks.
	podsSynced atomic.Bool
	informer   sync.WaitGroup
	stopCh     chan struct{}
	stopOnce   sync.Once
}

type cgEntry struct {
	found bool
	path  string
	info  PathInfo
}

// New returns a Resolver; nothing runs until Start.
func New(opts Options) *Resolver {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.MaxLabels <= 0 {
		opts.MaxLabels = DefaultMaxLabels
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	c, _ := lru.New[uint64, cgEntry](opts.CacheSize) // only fails for size <= 0
	r := &Resolver{opts: opts, cache: c, stopCh: make(chan struct{})}
	if opts.Client != nil {
		r.index = newPodIndex(opts.MaxLabels)
	}
	return r
}

// Start finds the cgroup2 hierarchy, walks it once, and when a client is set
// starts the pod informer and waits (at most SyncTimeout, or until ctx ends)
// for its first list. Errors say which part failed; a missing cgroup2 mount
// wraps ErrNoCgroup2 and leaves the resolver usable through LookupPID.
func (r *Resolver) Start(ctx context.Context) error {
	var errs []error
	r.root, r.rootPrefix = r.opts.CgroupRoot, "/"
	if r.root == "" {
		mp, prefix, err := FindCgroup2Mount(r.opts.ProcRoot + "/self/mountinfo")
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrNoCgroup2, err))
		} else {
			r.root, r.rootPrefix = mp, prefix
		}
	}
	if r.root != "" {
		if _, err := os.Stat(r.root + "/cgroup.procs"); err != nil {
			errs = append(errs, fmt.Errorf("podidentity: %w: %s is not a cgroup2 mount: %w", ErrNoCgroup2, r.root, err))
			r.root = ""
		} else {
			r.walkMu.Lock()
			_, _ = r.walk(0)
			r.walkMu.Unlock()
			if !r.opts.noHandles {
				if h, err := openCgroupHandles(r.root, r.rootPrefix); err == nil {
					r.handles.Store(h)
				}
			}
		}
	}
	if r.index != nil {
		if err := r.startInformer(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Resolver) startInformer(ctx context.Context) error {
	inf := newPodInformer(r.opts.Client, r.opts.NodeName)
	var lastErr atomic.Value
	_ = inf.SetTransform(trimPod)
	_ = inf.SetWatchErrorHandler(func(rf *cache.Reflector, err error) {
		lastErr.Store(err)
		cache.DefaultWatchErrorHandler(ctx, rf, err)
	})
	if _, err := inf.AddEventHandler(r.index.handlers()); err != nil {
		return fmt.Errorf("podidentity: %w", err)
	}
	r.synced = inf.HasSynced
	r.informer.Go(func() { inf.Run(r.stopCh) })
	waitCtx, cancel := context.WithTimeout(ctx, r.opts.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), inf.HasSynced) {
		scope := "all pods"
		if r.opts.NodeName != "" {
			scope = "pods of node " + r.opts.NodeName
		}
		r.informer.Go(func() {
			if cache.WaitForCacheSync(r.stopCh, inf.HasSynced) {
				r.podsSynced.Store(true)
				if late := r.opts.OnLateSync; late != nil {
					late()
				}
			}
		})
		msg := fmt.Sprintf("podidentity: the informer on %s did not sync within %v", scope, r.opts.SyncTimeout)
		if ctx.Err() != nil {
			msg = fmt.Sprintf("podidentity: start cancelled before the informer on %s synced", scope)
		}
		if err, _ := lastErr.Load().(error); err != nil {
			return fmt.Errorf("%w: %s (needs list and watch on pods): last error: %w", ErrNotSynced, msg, err)
		}
		return fmt.Errorf("%w: %s (needs list and watch on pods)", ErrNotSynced, msg)
	}
	r.podsSynced.Store(true)
	return nil
}

// Synced reports whether the pod informer has synced (false without a client).
func (r *Resolver) Synced() bool { return r.synced != nil && r.synced() }

// newPodInformer is the pod informer client-go's informer factory would make
// (resync 0, the namespace index; with NodeName, only pods with
// spec.nodeName=NodeName) from a core/v1 REST client alone: the factory links the
// informers of every API group, and client-go's typed clients their scheme.
func newPodInformer(client *k8sclient.CoreV1, nodeName string) cache.SharedIndexInformer {
	sel := ""
	if nodeName != "" {
		sel = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(client.Pods(sel), client), &corev1.Pod{},
		cache.SharedIndexInformerOptions{Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}})
}

// Stop stops the informer. Lookups keep answering from what is cached.
func (r *Resolver) Stop() {
	r.stopOnce.Do(func() {
		close(r.stopCh)
		r.informer.Wait()
		if h := r.handles.Swap(nil); h != nil {
			h.close()
		}
	})
}

// CgroupRoot returns the cgroup2 mount in use ("" before Start or when none).
func (r *Resolver) CgroupRoot() string { return r.root }

// Lookup returns the identity of the tasks in cgroup v2 id cgroupID. A cached
// id costs a map lookup. An unknown id is opened by its file handle (a few
// µs, so a container is named from its first event); where handles are
// refused, it re-walks the hierarchy, at most once per MinWalkInterval (the
// walk runs in the caller; tens of ms on a busy node). Ids that no cgroup has
// now are remembered as unknown.
func (r *Resolver) Lookup(cgroupID uint64) Identity {
	e, ok := r.cache.Get(cgroupID)
	if !ok {
		e = r.resolve(cgroupID)
	}
	if !e.found {
		return Identity{}
	}
	return r.identify(e.info, e.path)
}

// LookupPID resolves a process from ProcRoot/PID/cgroup (v2 line, then v1
// lines): the fallback for v1-only hosts or unresolvable cgroup ids.
func (r *Resolver) LookupPID(pid int) (Identity, error) {
	info, path, err := InfoFromPID(r.opts.ProcRoot, pid)
	if err != nil {
		return Identity{}, err
	}
	return r.identify(info, path), nil
}

func (r *Resolver) identify(info PathInfo, path string) Identity {
	id := Identity{
		Resolved:    true,
		Host:        info.Host,
		ContainerID: info.ContainerID,
		Runtime:     info.Runtime,
		PodUID:      info.PodUID,
		CgroupPath:  path,
	}
	if r.index == nil || info.Host {
		return id
	}
	var p *Pod
	if id.ContainerID != "" {
		p = r.index.byContainerID(id.ContainerID)
	}
	if p == nil && id.PodUID != "" {
		p = r.index.byPodUID(id.PodUID)
	}
	if p != nil {
		id.Pod = p
		if id.PodUID == "" {
			id.PodUID = p.UID
		}
		if id.Runtime == "" {
			id.Runtime = p.runtime
		}
	} else {
		// A pod's cgroup (its UID in the path) whose pod is not known yet.
		if id.PodPending = id.PodUID != ""; id.PodPending {
			id.PendingReason = PendingPodNotSeen
			if !r.podsSynced.Load() {
				id.PendingReason = PendingWatchNotSynced
			}
		}
	}
	return id
}

func (r *Resolver) resolve(id uint64) cgEntry {
	if h := r.handles.Load(); h != nil && id != 0 {
		path, found, err := h.path(id)
		if err == nil {
			e := cgEntry{found: found}
			if found {
				e.path, e.info = path, ParsePath(path)
			}
			r.cache.Add(id, e)
			return e
		}
		if errors.Is(err, errHandlesUnsupported) && r.handles.CompareAndSwap(h, nil) {
			h.close()
		}
	}
	called := time.Now()
	r.walkMu.Lock()
	defer r.walkMu.Unlock()
	if e, ok := r.cache.Get(id); ok { // another caller walked meanwhile
		return e
	}
	if r.root == "" || id == 0 {
		return cgEntry{}
	}
	if !r.lastWalk.IsZero() && called.Sub(r.lastWalk) < MinWalkInterval {
		return cgEntry{} // rate limited; not remembered
	}
	e, err := r.walk(id)
	if err == nil && !e.found {
		r.cache.Add(id, e) // the walk began after the call: the cgroup is gone
	}
	return e
}

// walk maps the whole hierarchy into the cache and returns the entry of want.
// walkMu must be held.
func (r *Resolver) walk(want uint64) (cgEntry, error) {
	r.lastWalk = time.Now()
	r.walks.Add(1)
	var wanted cgEntry
	err := walkCgroups(r.root, r.rootPrefix, func(id uint64, path string) {
		e := cgEntry{found: true, path: path, info: ParsePath(path)}
		if id == want {
			wanted = e
			return
		}
		r.cache.Add(id, e)
	})
	if wanted.found {
		r.cache.Add(want, wanted) // last, so a hierarchy larger than the cache keeps it
	}
	return wanted, err
}
