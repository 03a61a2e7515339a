// Package securityrulesprocessor turns events from every source into alerts with
// the rules of internal/rules: per-event rules, thresholds, throttling and
// sequences that correlate across sources.
//
//go:generate go tool mdatagen metadata.yaml
package securityrulesprocessor // import "github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
