// Package kubeeventsreceiver watches Kubernetes Events (core/v1 and
// events.k8s.io/v1) and turns each occurrence into one OpenTelemetry log record
// (EventName "k8s.event"). It resumes from a checkpointed resourceVersion after a
// restart, relists and deduplicates after 410 Gone, and emits from one replica
// only when leader election is on.
//
//go:generate go tool mdatagen metadata.yaml
package kubeeventsreceiver // import "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver"
