// Package ingresslogreceiver tails HTTP access logs of the cluster's ingress
// (ingress-nginx, nginx, Traefik, Envoy; in container log files or on a host)
// and turns each line into one log record (EventName "http.access") and the
// ingress's RED metrics.
//
//go:generate go tool mdatagen metadata.yaml
package ingresslogreceiver // import "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver"
