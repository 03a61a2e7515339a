package kubeeventsreceiver

import (
	"context"
	"sync"

	"go.uber.org/zap"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// elect campaigns for the Lease until ctx ends and runs lead while holding it.
// The shared checkpoint (a ConfigMap named like the Lease) makes the next leader
// resume exactly where the last one confirmed emitting, not from its own older
// local checkpoint; at most the last, unconfirmed batch of a leader that
// crashed is emitted again.
func (r *eventsReceiver) elect(ctx context.Context) {
	le := r.cfg.LeaderElection
	ns, id := le.leaseNamespace(), le.identity()
	r.ckpt.shared = &sharedCheckpoint{client: r.client, namespace: ns, name: le.LeaseName}
	lock := &loggingLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metaOf(ns, le.LeaseName),
		Client:     r.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}, r: r}
	// One term's lead must have returned before the next starts.
	var leading sync.Mutex
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   le.LeaseDuration,
			RenewDeadline:   le.RenewDeadline,
			RetryPeriod:     le.RetryPeriod,
			ReleaseOnCancel: r.releaseOnCancel,
			Name:            "kube_events",
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					leading.Lock()
					defer leading.Unlock()
					r.set.Logger.Info("Leading: emitting Kubernetes Events", zap.String("identity", id),
						zap.String("lease", ns+"/"+le.LeaseName))
					r.lead(lctx)
				},
				OnStoppedLeading: func() {
					r.set.Logger.Info("No longer leading: stopped emitting", zap.String("identity", id))
				},
			},
		})
		if err != nil { // only on a config client-go refuses, which Validate checks first
			r.set.Logger.Error("Leader election cannot start", zap.Error(err))
			return
		}
		elector.Run(ctx)
	}
	// Wait for the last term to wind down before returning.
	leading.Lock()
	defer leading.Unlock()
}

// loggingLock reports the Lease calls that fail (unreachable, unauthorized)
// through the collector's logger: client-go only tells klog. Repeats of the
// same error are logged once a minute.
type loggingLock struct {
	resourcelock.Interface
	r     *eventsReceiver
	quiet repeatFilter
}

func (l *loggingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err != nil && !isNotFound(err) {
		l.report("reading the Lease", err)
	}
	return rec, raw, err
}

func (l *loggingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	if err != nil && !isAlreadyExists(err) {
		l.report("creating the Lease", err)
	}
	return err
}

func (l *loggingLock) report(what string, err error) {
	l.r.telemetry.ReceiverKubeEventsAPIErrors.Add(context.Background(), 1)
	if l.quiet.allow(err.Error()) {
		l.r.set.Logger.Error("Leader election: "+what+" failed; retrying every retry_period",
			zap.String("lease", l.Describe()), zap.String("hint", hintFor(err)), zap.Error(err),
			zap.Duration("retry_period", l.r.cfg.LeaderElection.RetryPeriod))
	}
}
