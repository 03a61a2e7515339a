package kubeeventsreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
)

// The Event APIs. They serve the same stored objects; watching both is allowed
// (the dedupe cache drops the second copy) but only doubles the API load.
const (
	apiCore   = "v1"               // core/v1 Event (count, source, firstTimestamp...)
	apiEvents = "events.k8s.io/v1" // events.k8s.io/v1 Event (series, note, regarding...)
)

// Values of start_at: what a first start, with no checkpoint anywhere, emits.
const (
	startAtEnd       = "end"       // only what happens from now on (contrib's k8s_events)
	startAtBeginning = "beginning" // also every Event the API still holds (about an hour)
)

// Config is the kube_events receiver's configuration.
type Config struct {
	// AuthType is serviceAccount (in a pod) or kubeConfig ($KUBECONFIG or ~/.kube/config).
	AuthType string `mapstructure:"auth_type"`
	// APIs to watch: v1 and/or events.k8s.io/v1.
	APIs []string `mapstructure:"apis"`
	// Namespaces to watch; empty means all.
	Namespaces []string `mapstructure:"namespaces"`
	// StartAt says what a first start with no checkpoint emits: end or beginning.
	StartAt string `mapstructure:"start_at"`
	// StorageID names a storage extension (file_storage) that keeps the last
	// resourceVersion, so that a restart resumes where it stopped.
	StorageID *component.ID `mapstructure:"storage"`
	// LeaderElection makes one replica of several emit.
	LeaderElection LeaderElectionConfig `mapstructure:"leader_election"`
	// Pods adds the labels and owning workload of an involved pod.
	Pods PodsConfig `mapstructure:"pods"`
	// DedupeCacheSize bounds the occurrences (uid and count) remembered for dedupe.
	DedupeCacheSize int `mapstructure:"dedupe_cache_size"`
	// MaxBatchSize bounds the records of one ConsumeLogs call.
	MaxBatchSize int `mapstructure:"max_batch_size"`
	// Backoff paces retries after API errors (unreachable, unauthorized...).
	Backoff BackoffConfig `mapstructure:"backoff"`
}

// LeaderElectionConfig is a coordination.k8s.io Lease held by the replica that emits.
type LeaderElectionConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// LeaseName names the Lease, and the ConfigMap holding the shared checkpoint.
	LeaseName string `mapstructure:"lease_name"`
	// LeaseNamespace is where both live; "" means the pod's namespace (from its
	// service account), else "default".
	LeaseNamespace string `mapstructure:"lease_namespace"`
	// Identity names this replica in the Lease; "" means $POD_NAME (set from
	// the downward API), else the host name plus a random suffix.
	Identity      string        `mapstructure:"identity"`
	LeaseDuration time.Duration `mapstructure:"lease_duration"`
	RenewDeadline time.Duration `mapstructure:"renew_deadline"`
	RetryPeriod   time.Duration `mapstructure:"retry_period"`
}

// PodsConfig is the cache of pod labels and owners used to enrich events about pods.
type PodsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// CacheSize bounds the pods remembered (least recently used go first).
	CacheSize int `mapstructure:"cache_size"`
	// TTL bounds how stale a cached pod's labels may be.
	TTL time.Duration `mapstructure:"ttl"`
	// MaxLabels bounds the labels copied per pod.
	MaxLabels int `mapstructure:"max_labels"`
	// LookupTimeout bounds how long a batch waits for the lookups of pods not
	// cached yet; events whose pod takes longer go without its labels and owner.
	LookupTimeout time.Duration `mapstructure:"lookup_timeout"`
}

// BackoffConfig is an exponential backoff with jitter, capped.
type BackoffConfig struct {
	InitialInterval time.Duration `mapstructure:"initial_interval"`
	MaxInterval     time.Duration `mapstructure:"max_interval"`
}

func createDefaultConfig() component.Config {
	return &Config{
		AuthType: k8sclient.AuthServiceAccount,
		APIs:     []string{apiCore},
		StartAt:  startAtEnd,
		LeaderElection: LeaderElectionConfig{
			Enabled:       true,
			LeaseName:     "otelcol-k8ssec-kube-events",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
		},
		Pods:            PodsConfig{Enabled: true, CacheSize: 10000, TTL: 5 * time.Minute, MaxLabels: 32, LookupTimeout: 500 * time.Millisecond},
		DedupeCacheSize: 16384,
		MaxBatchSize:    1000,
		Backoff:         BackoffConfig{InitialInterval: time.Second, MaxInterval: 2 * time.Minute},
	}
}

// Validate reports every problem at once so a user fixes the config in one go.
func (cfg *Config) Validate() error {
	var errs []error
	if err := k8sclient.ValidateAuthType(cfg.AuthType, false); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.APIs) == 0 {
		errs = append(errs, fmt.Errorf("apis must name %s, %s or both", apiCore, apiEvents))
	}
	seen := map[string]bool{}
	for _, a := range cfg.APIs {
		if a != apiCore && a != apiEvents {
			errs = append(errs, fmt.Errorf("apis: unknown API %q (want %s or %s)", a, apiCore, apiEvents))
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("apis: %q twice", a))
		}
		seen[a] = true
	}
	for _, ns := range cfg.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("namespaces: %q is not a namespace name: %v", ns, msgs))
		}
	}
	if cfg.StartAt != startAtEnd && cfg.StartAt != startAtBeginning {
		errs = append(errs, fmt.Errorf("start_at %q: want %s or %s", cfg.StartAt, startAtEnd, startAtBeginning))
	}
	errs = append(errs, cfg.LeaderElection.validate()...)
	if cfg.Pods.Enabled && (cfg.Pods.CacheSize <= 0 || cfg.Pods.TTL <= 0 || cfg.Pods.LookupTimeout <= 0 || cfg.Pods.MaxLabels < 0) {
		errs = append(errs, errors.New("pods: cache_size, ttl and lookup_timeout must be positive, max_labels not negative"))
	}
	if cfg.DedupeCacheSize <= 0 {
		errs = append(errs, fmt.Errorf("dedupe_cache_size must be positive, got %d", cfg.DedupeCacheSize))
	}
	if cfg.MaxBatchSize <= 0 {
		errs = append(errs, fmt.Errorf("max_batch_size must be positive, got %d", cfg.MaxBatchSize))
	}
	if cfg.Backoff.InitialInterval <= 0 || cfg.Backoff.MaxInterval < cfg.Backoff.InitialInterval {
		errs = append(errs, errors.New("backoff: initial_interval must be positive and max_interval at least initial_interval"))
	}
	return errors.Join(errs...)
}

// validate repeats client-go's own checks, so that they fail at config load
// instead of at Start.
func (c LeaderElectionConfig) validate() []error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(c.LeaseName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("leader_election.lease_name %q: %v", c.LeaseName, msgs))
	}
	if c.LeaseNamespace != "" {
		if msgs := validation.IsDNS1123Label(c.LeaseNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("leader_election.lease_namespace %q: %v", c.LeaseNamespace, msgs))
		}
	}
	if c.RetryPeriod <= 0 || c.RenewDeadline <= c.RetryPeriod*6/5 || c.LeaseDuration <= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("leader_election: want lease_duration (%v) > renew_deadline (%v) > 1.2 × retry_period (%v) > 0",
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod))
	}
	return errs
}
