package kubeeventsreceiver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient/clientset"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

// serviceAccountNamespace is where a pod learns its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// eventsReceiver runs one stream per (API, namespace), while it leads.
type eventsReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	telemetry *metadata.TelemetryBuilder
	obs       *receiverhelper.ObsReport

	// restConfig, when set (tests), replaces auth_type.
	restConfig *rest.Config
	// releaseOnCancel gives the Lease up at Shutdown so that another replica
	// takes over at once; tests clear it to die as a crashed replica would.
	releaseOnCancel bool

	client clientset.Interface
	pods   *podCache
	// podErrLog keeps failed pod lookups from flooding the log.
	podErrLog repeatFilter
	dedupe    *lru.Cache[string, struct{}]
	ckpt      *checkpoints

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newEventsReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*eventsReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	dedupe, err := lru.New[string, struct{}](cfg.DedupeCacheSize)
	if err != nil {
		return nil, err
	}
	return &eventsReceiver{cfg: cfg, set: set, next: next, telemetry: tb, obs: obs, dedupe: dedupe, releaseOnCancel: true}, nil
}

// Start connects nothing yet: an unreachable or refusing apiserver is retried
// in the background with backoff and logged, never fatal. A configuration that
// cannot work at all (no kubeconfig, no storage extension) fails here.
func (r *eventsReceiver) Start(ctx context.Context, host component.Host) error {
	restCfg := r.restConfig
	if restCfg == nil {
		var err error
		if restCfg, err = k8sclient.RestConfig(r.cfg.AuthType); err != nil {
			return err
		}
	}
	client, err := newClient(restCfg)
	if err != nil {
		return err
	}
	r.client = client
	local, err := getStorageClient(ctx, host, r.cfg.StorageID, r.set.ID)
	if err != nil {
		return err
	}
	r.ckpt = &checkpoints{local: local}
	if r.cfg.Pods.Enabled {
		// Its own client and so its own token bucket: lookups never delay
		// checkpoint writes or Lease renewals.
		podCfg := rest.CopyConfig(restCfg)
		podCfg.RateLimiter = nil
		podClient, err := newClient(podCfg)
		if err != nil {
			return err
		}
		r.pods = newPodCache(podClient, r.cfg.Pods, r.podLookupFailed)
		r.pods.start()
	}

	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if r.cfg.LeaderElection.Enabled {
			r.elect(runCtx)
		} else {
			r.lead(runCtx)
		}
	}()
	r.set.Logger.Info("Watching Kubernetes Events", zap.String("apiserver", restCfg.Host),
		zap.Strings("apis", r.cfg.APIs), zap.Strings("namespaces", r.cfg.Namespaces),
		zap.Bool("leader_election", r.cfg.LeaderElection.Enabled), zap.Bool("checkpointed", local != nil))
	return nil
}

func (r *eventsReceiver) Shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	r.pods.shutdown()
	var err error
	if r.ckpt != nil && r.ckpt.local != nil {
		err = r.ckpt.local.Close(ctx)
	}
	r.telemetry.Shutdown()
	return err
}

// lead runs every stream until ctx ends. A stream fenced out by another
// replica's checkpoint write stops them all; they restart from a fresh read.
func (r *eventsReceiver) lead(ctx context.Context) {
	namespaces := r.cfg.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	bo := r.newBackoff()
	for ctx.Err() == nil {
		if r.ckpt.shared != nil {
			r.ckpt.shared.reset()
		}
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var fenced error
		var once sync.Once
		for _, api := range r.cfg.APIs {
			for _, ns := range namespaces {
				s := &stream{r: r, api: api, namespace: ns}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.run(sctx); err != nil {
						once.Do(func() { fenced = err })
						cancel()
					}
				}()
			}
		}
		wg.Wait()
		cancel()
		if fenced == nil {
			return
		}
		delay := bo.Step()
		r.set.Logger.Warn("Stopped emitting: another replica wrote the shared checkpoint; resuming from it",
			zap.Error(fenced), zap.Duration("retry_in", delay))
		if !sleepCtx(ctx, delay) {
			return
		}
	}
}

// leaseNamespace is the configured namespace, else the pod's own, else default.
func (c LeaderElectionConfig) leaseNamespace() string {
	if c.LeaseNamespace != "" {
		return c.LeaseNamespace
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "default"
}

// podNameEnv is where the manifests put the pod's name (the downward API).
const podNameEnv = "POD_NAME"

// identity is the configured identity, else the pod's name, else the host name
// with a random suffix. A pod name is unique among the replicas and survives a
// container restart, so a restarted leader takes its own Lease back at once
// instead of waiting it out; outside a pod two processes may share a host
// name, and a shared identity would let both lead.
func (c LeaderElectionConfig) identity() string {
	if c.Identity != "" {
		return c.Identity
	}
	if pod := strings.TrimSpace(os.Getenv(podNameEnv)); pod != "" {
		return pod
	}
	host, err := os.Hostname()
	if err != nil {
		host = "kube-events"
	}
	return host + "_" + string(uuid.NewUUID())
}

// newClient talks protobuf, which core types support: decoding a burst of
// Events costs a fraction of JSON's.
func newClient(restCfg *rest.Config) (clientset.Interface, error) {
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "otelcol-k8ssec/kube_events"
	restCfg.ContentType = runtime.ContentTypeProtobuf
	restCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := clientset.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client, nil
}
