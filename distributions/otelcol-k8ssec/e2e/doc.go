// Package e2e holds the end-to-end test of the otelcol-k8ssec binary built by ocb
// (make build): see e2e_test.go.
package e2e
