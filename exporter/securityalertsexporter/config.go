package securityalertsexporter

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// The wire formats.
const (
	FormatAlertmanager = "alertmanager"
	FormatFalco        = "falco"
	FormatWebhook      = "webhook"
	FormatSlack        = "slack"
	// FormatStdout writes each alert as one line of Falco JSON on the
	// collector's standard output (as Falco's own stdout output does), for
	// `kubectl logs`: no endpoint, nothing to set up.
	FormatStdout = "stdout"
)

var formats = []string{FormatAlertmanager, FormatFalco, FormatWebhook, FormatSlack, FormatStdout}

// Config is the security_alerts exporter's configuration: one instance, one
// destination. Every confighttp client setting applies (tls, headers, auth,
// proxy_url, compression, timeout); `timeout` bounds one HTTP request.
type Config struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	QueueConfig             configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig             configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// Format is the wire format: alertmanager, falco, webhook or slack; or
	// stdout, Falco JSON lines on standard output (no endpoint).
	Format string `mapstructure:"format"`
	// Alertmanager applies to format alertmanager.
	Alertmanager AlertmanagerConfig `mapstructure:"alertmanager"`
	// Webhook applies to format webhook.
	Webhook WebhookConfig `mapstructure:"webhook"`
	// Grouping applies to the chat formats (webhook, slack): Alertmanager
	// groups for itself, and Falco's consumers expect every alert.
	Grouping GroupingConfig `mapstructure:"grouping"`
}

// AlertmanagerConfig shapes alerts for Alertmanager's v2 API.
type AlertmanagerConfig struct {
	// Labels maps a label name to the alert attribute it takes (record first,
	// then resource). Alertmanager groups and deduplicates on labels, so they
	// must stay low-cardinality: attributes with per-event values are refused.
	// alertname (the rule name) is always set.
	Labels map[string]string `mapstructure:"labels"`
	// ResolveTimeout is how long an alert stays firing after its last event:
	// endsAt is now plus this, and each new firing refreshes it.
	ResolveTimeout time.Duration `mapstructure:"resolve_timeout"`
}

// WebhookConfig shapes the body of format webhook.
type WebhookConfig struct {
	// Template is a Go text/template over the alert (see docs/alerts.md); empty sends
	// the alert as flat JSON.
	Template string `mapstructure:"template"`
}

// GroupingConfig folds repeated chat alerts into one message per interval.
type GroupingConfig struct {
	// Enabled turns grouping on.
	Enabled bool `mapstructure:"enabled"`
	// GroupBy names the attributes that, with the rule, make a group.
	GroupBy []string `mapstructure:"group_by"`
	// GroupInterval is how often a group sends at most one message.
	GroupInterval time.Duration `mapstructure:"group_interval"`
}

// defaultLabels are the Alertmanager labels: the rule, and where it fired.
func defaultLabels() map[string]string {
	return map[string]string{
		"severity":   attrSeverity,
		"rule_id":    "security_rule.uuid",
		"ruleset":    "security_rule.ruleset.name",
		"category":   "security_rule.category",
		"cluster":    "k8s.cluster.name",
		"namespace":  "k8s.namespace.name",
		"pod":        "k8s.pod.name",
		"deployment": "k8s.deployment.name",
		"daemonset":  "k8s.daemonset.name",
		"node":       "k8s.node.name",
	}
}

// perEventAttrs hold a value that differs for every event: as labels they
// would make every firing a new Alertmanager alert. They go to annotations.
var perEventAttrs = []string{
	"process.pid", "process.parent_pid", "thread.id", "process.command_line",
	"process.command_args", "process.parent.command_line", "k8s.audit.id",
	"k8s.audit.request_received_time", "k8s.audit.source_ips", "k8ssec.process.exec_id",
	"k8ssec.process.parent.exec_id", "k8ssec.process.start_time", "k8ssec.http.request.id",
	"client.address", "client.port", "source.address", "source.port",
	"network.peer.address", "network.peer.port", "url.original", "url.query",
	"k8s.pod.uid", "container.id", "k8s.event.uid", "k8s.event.time",
	"k8s.event.first_time", "k8s.event.last_time", "security_rule.count",
	attrTime, attrOutput,
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 10 * time.Second
	return &Config{
		ClientConfig: client,
		QueueConfig:  configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:  configretry.NewDefaultBackOffConfig(),
		Format:       FormatAlertmanager,
		Alertmanager: AlertmanagerConfig{Labels: defaultLabels(), ResolveTimeout: 5 * time.Minute},
		Grouping:     GroupingConfig{GroupBy: []string{"k8s.namespace.name", "k8s.pod.name"}, GroupInterval: time.Minute},
	}
}

// Validate reports every problem at once.
func (cfg *Config) Validate() error {
	var errs []error
	if !slices.Contains(formats, cfg.Format) {
		errs = append(errs, fmt.Errorf("format %q: must be one of %v", cfg.Format, formats))
	}
	if cfg.Format == FormatStdout {
		if cfg.Endpoint != "" {
			errs = append(errs, fmt.Errorf("endpoint %q: format %s writes to standard output and takes no endpoint", cfg.Endpoint, FormatStdout))
		}
	} else if cfg.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must be set to the destination's URL"))
	} else if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q must be an http:// or https:// URL with a host", cfg.Endpoint))
	}
	if cfg.Format == FormatAlertmanager {
		errs = append(errs, cfg.Alertmanager.validate()...)
	}
	if cfg.Format == FormatWebhook && cfg.Webhook.Template != "" {
		if _, err := parseTemplate(cfg.Webhook.Template); err != nil {
			errs = append(errs, fmt.Errorf("webhook.template: %w", err))
		}
	}
	if cfg.Grouping.Enabled {
		if cfg.Format != FormatWebhook && cfg.Format != FormatSlack {
			errs = append(errs, fmt.Errorf("grouping applies to the webhook and slack formats, not %q (Alertmanager groups for itself; Falco's consumers expect every alert)", cfg.Format))
		}
		if cfg.Grouping.GroupInterval <= 0 {
			errs = append(errs, fmt.Errorf("grouping.group_interval must be positive, got %v", cfg.Grouping.GroupInterval))
		}
	}
	return errors.Join(errs...)
}

func (c *AlertmanagerConfig) validate() []error {
	var errs []error
	if c.ResolveTimeout <= 0 {
		errs = append(errs, fmt.Errorf("alertmanager.resolve_timeout must be positive, got %v", c.ResolveTimeout))
	}
	for name, attr := range c.Labels {
		if !labelName.MatchString(name) {
			errs = append(errs, fmt.Errorf("alertmanager.labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name))
		}
		if name == "alertname" {
			errs = append(errs, errors.New("alertmanager.labels: alertname is always the rule name and cannot be mapped"))
		}
		if slices.Contains(perEventAttrs, attr) {
			errs = append(errs, fmt.Errorf("alertmanager.labels: %s: %q has a value per event; a label with it would make every firing a new alert (it is in the annotations)", name, attr))
		}
	}
	return errs
}
