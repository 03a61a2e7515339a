// Package k8sauditreceiver receives Kubernetes audit events, from the
// kube-apiserver's webhook backend and from its audit log files, and turns each
// into one OpenTelemetry log record (EventName "k8s.audit").
//
//go:generate go tool mdatagen metadata.yaml
package k8sauditreceiver // import "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver"
