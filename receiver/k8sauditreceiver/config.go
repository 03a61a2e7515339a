package k8sauditreceiver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/fileconsumer"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
)

const (
	defaultEndpoint     = "localhost:9765"
	defaultPath         = "/k8s-audit"
	defaultMaxEventSize = 1 << 20 // 1 MiB: far above a RequestResponse pod create
	// The apiserver's webhook backend sends batches of up to 400 events
	// (--audit-webhook-batch-max-size); 64 MiB leaves room for large objects.
	defaultMaxRequestBodySize = 64 << 20
)

// The audit stages, as audit.k8s.io/v1 names them.
var validStages = []string{"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}

// Config is the k8s_audit receiver's configuration.
type Config struct {
	// Webhook is the HTTP(S) endpoint the apiserver's webhook audit backend posts to.
	Webhook WebhookConfig `mapstructure:"webhook"`
	// Files tails audit log files as --audit-log-path writes them (JSON lines).
	Files configoptional.Optional[FilesConfig] `mapstructure:"files"`
	// Stages keeps events of these stages only. Default: ResponseComplete and Panic,
	// which carry the outcome; RequestReceived would double every event.
	Stages []string `mapstructure:"stages"`
	// Redact replaces Secret data and tokens in request/response objects.
	Redact RedactConfig `mapstructure:"redact"`
	// MaxEventSize is the largest single audit event accepted, in bytes; larger
	// ones are reported, counted and dropped.
	MaxEventSize int `mapstructure:"max_event_size"`
	// PodLabels adds the labels of the pod an event acts on (podlabels.go).
	PodLabels PodLabelsConfig `mapstructure:"pod_labels"`
}

// WebhookConfig is the webhook backend's server: every confighttp setting (tls
// with client_ca_file for mTLS, max_request_body_size, timeouts, auth) plus the path.
type WebhookConfig struct {
	// Enabled turns the webhook server off when false; files alone still work.
	Enabled                 bool `mapstructure:"enabled"`
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path is the URL path the apiserver posts to.
	Path string `mapstructure:"path"`
}

// FilesConfig tails audit log files with contrib's stanza file consumer:
// include/exclude globs, start_at, poll_interval, rotation and fingerprints all
// behave as in the file_log receiver.
type FilesConfig struct {
	fileconsumer.Config `mapstructure:",squash"`
	// StorageID names a storage extension (file_storage) that checkpoints offsets
	// so that a restart resumes where it stopped.
	StorageID *component.ID `mapstructure:"storage"`
}

// RedactConfig controls redaction of credentials carried in audit payloads.
type RedactConfig struct {
	// Enabled replaces the values of Secret data/stringData, their
	// last-applied-configuration annotation, and TokenRequest/TokenReview tokens.
	Enabled bool `mapstructure:"enabled"`
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	files := fileconsumer.NewConfig()
	// Lines reach the receiver as the file's bytes, split, not decoded: it
	// checks them for UTF-8 itself (filetail.ValidUTF8).
	files.Encoding = filetail.RawEncoding
	return &Config{
		Webhook: WebhookConfig{
			Enabled:      true,
			ServerConfig: server,
			Path:         defaultPath,
		},
		Files:        configoptional.Default(FilesConfig{Config: *files}),
		Stages:       []string{"ResponseComplete", "Panic"},
		Redact:       RedactConfig{Enabled: true},
		MaxEventSize: defaultMaxEventSize,
		PodLabels:    PodLabelsConfig{AuthType: k8sclient.AuthServiceAccount},
	}
}

// Validate reports every problem at once so a user fixes the config in one go.
func (cfg *Config) Validate() error {
	var errs []error
	if !cfg.Webhook.Enabled && !cfg.Files.HasValue() {
		errs = append(errs, errors.New("nothing to receive: the webhook is disabled and no files are configured"))
	}
	if cfg.Webhook.Enabled {
		if cfg.Webhook.NetAddr.Endpoint == "" {
			errs = append(errs, errors.New("webhook.endpoint must be set"))
		}
		if !strings.HasPrefix(cfg.Webhook.Path, "/") {
			errs = append(errs, fmt.Errorf("webhook.path %q must start with '/'", cfg.Webhook.Path))
		}
	}
	if cfg.Files.HasValue() && len(cfg.Files.Get().Include) == 0 {
		errs = append(errs, errors.New("files.include must name at least one audit log path or glob"))
	}
	if len(cfg.Stages) == 0 {
		errs = append(errs, fmt.Errorf("stages must name at least one of %v", validStages))
	}
	for _, s := range cfg.Stages {
		if !isValidStage(s) {
			errs = append(errs, fmt.Errorf("stages: unknown stage %q (valid: %v)", s, validStages))
		}
	}
	if err := cfg.PodLabels.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxEventSize <= 0 {
		errs = append(errs, fmt.Errorf("max_event_size must be positive, got %d", cfg.MaxEventSize))
	}
	return errors.Join(errs...)
}

func isValidStage(s string) bool { return stageName([]byte(s)) != "" }

// stageName returns the audit stage b names, as one of the validStages
// strings, or "" when it names none.
func stageName(b []byte) string {
	for _, v := range validStages {
		if string(b) == v {
			return v
		}
	}
	return ""
}
