// Package securityalertsexporter sends security.alert records (made by the
// security_rules processor) to the systems that page people: Prometheus
// Alertmanager, Falco's JSON output (falcosidekick), any JSON webhook, and
// Slack-style incoming webhooks; or, as Falco JSON lines, the collector's
// standard output. Other records are passed over and counted.
//
//go:generate go tool mdatagen metadata.yaml
package securityalertsexporter // import "github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter"
