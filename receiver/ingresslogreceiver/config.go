package ingresslogreceiver

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer"
	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
)

// Container log wrappings.
const (
	containerAuto   = "auto"   // per line: CRI, Docker json-file or none
	containerCRI    = "cri"    // containerd, CRI-O: <time> <stream> <P|F> <line>
	containerDocker = "docker" // json-file: {"log":"...","stream":...,"time":...}
	containerNone   = "none"   // plain access log files on a host
)

// Config is the ingress_log receiver's configuration: one input, files by
// glob, with one format. Several inputs are several receivers
// (ingress_log/nginx, ingress_log/traefik).
type Config struct {
	// include, exclude, start_at, poll_interval, fingerprint_size, ... as in
	// the file_log receiver.
	fileconsumer.Config `mapstructure:",squash"`
	// StorageID names a storage extension (file_storage) that checkpoints
	// offsets, so that a restart resumes where it stopped.
	StorageID *component.ID `mapstructure:"storage"`
	// Format names the log format (accesslog.Formats); nginx takes LogFormat.
	Format string `mapstructure:"format"`
	// LogFormat is an nginx log_format string, pasted from nginx.conf or the
	// ingress-nginx ConfigMap's log-format-upstream, for format nginx.
	LogFormat string `mapstructure:"log_format"`
	// Container is how a container runtime wrapped each line: auto, cri,
	// docker or none.
	Container string `mapstructure:"container"`
	// TrustedProxies are CIDRs of proxies (load balancers) whose
	// X-Forwarded-For is believed: client.address is then the last address
	// in it that is not a trusted proxy.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// UpstreamNamespaces are namespace names that contain '-': ingress-nginx
	// names an upstream namespace-service-port, and without them the first
	// '-' is taken to end the namespace.
	UpstreamNamespaces []string `mapstructure:"upstream_namespaces"`
	// Metrics are the RED metrics, sent when a metrics pipeline uses the receiver.
	Metrics MetricsConfig `mapstructure:"metrics"`
}

// MetricsConfig shapes the RED metrics.
type MetricsConfig struct {
	// Interval is how often the cumulative metrics are sent.
	Interval time.Duration `mapstructure:"interval"`
	// DurationBuckets are the request duration histogram's bounds, in seconds.
	DurationBuckets []float64 `mapstructure:"duration_buckets"`
	// MaxSeries caps the series (ingress, service, method, status class);
	// requests beyond it are counted in one overflow series.
	MaxSeries int `mapstructure:"max_series"`
}

// The semantic conventions' advice for http.server.request.duration.
var defaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func createDefaultConfig() component.Config {
	fc := fileconsumer.NewConfig()
	fc.StartAt = "end"
	// Lines reach the receiver as the file's bytes, split, not decoded: it
	// checks them for UTF-8 itself (filetail.ValidUTF8).
	fc.Encoding = filetail.RawEncoding
	return &Config{
		Config:    *fc,
		Format:    accesslog.FormatIngressNginx,
		Container: containerAuto,
		Metrics: MetricsConfig{
			Interval:        30 * time.Second,
			DurationBuckets: defaultBuckets,
			MaxSeries:       5000,
		},
	}
}

// Validate reports every problem at once.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.Include) == 0 {
		errs = append(errs, errors.New("include must name at least one access log path or glob"))
	}
	if _, err := accesslog.New(cfg.Format, cfg.LogFormat); err != nil {
		errs = append(errs, fmt.Errorf("format: %w", err))
	} else if cfg.LogFormat != "" && cfg.Format != accesslog.FormatNginx {
		errs = append(errs, fmt.Errorf("log_format is only read with format %q, not %q", accesslog.FormatNginx, cfg.Format))
	}
	switch cfg.Container {
	case containerAuto, containerCRI, containerDocker, containerNone:
	default:
		errs = append(errs, fmt.Errorf("container %q is not one of auto, cri, docker, none", cfg.Container))
	}
	if _, err := parsePrefixes(cfg.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted_proxies: %w", err))
	}
	if cfg.Metrics.Interval <= 0 {
		errs = append(errs, fmt.Errorf("metrics.interval must be positive, got %s", cfg.Metrics.Interval))
	}
	if cfg.Metrics.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("metrics.max_series must be positive, got %d", cfg.Metrics.MaxSeries))
	}
	for i, b := range cfg.Metrics.DurationBuckets {
		if i > 0 && b <= cfg.Metrics.DurationBuckets[i-1] {
			errs = append(errs, errors.New("metrics.duration_buckets must be increasing"))
			break
		}
	}
	return errors.Join(errs...)
}

// parsePrefixes reads CIDRs, or single addresses as /32 and /128.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
