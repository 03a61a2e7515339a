// Package ebpfreceiver turns what the kernel sees processes do into security
// events: eBPF programs on BTF-typed tracepoints (bpf/) write records to a ring
// buffer, and each record becomes one OpenTelemetry log record
// (EventName "process.exec", "process.exit", ...) with semantic-convention
// process.* attributes.
//
//go:generate go tool mdatagen metadata.yaml
package ebpfreceiver // import "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver"
