// Package nodee2e runs the product as it is deployed: the shipped manifests applied
// with kubectl to a real single-node cluster (internal/k8snode), the collector image
// built from make build's binary, and attacks from inside real pods. See
// TestDeployedOnANode.
package nodee2e
