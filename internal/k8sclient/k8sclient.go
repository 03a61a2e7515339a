// Package k8sclient builds Kubernetes API clients the way contrib's Kubernetes
// components do, from an auth_type: serviceAccount (in a pod) or kubeConfig
// ($KUBECONFIG or ~/.kube/config). Every component of this distribution that talks
// to the API uses it, so auth_type means the same everywhere.
package k8sclient

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Values of auth_type.
const (
	AuthNone           = "none"           // no API access
	AuthServiceAccount = "serviceAccount" // the pod's service account token and CA
	AuthKubeConfig     = "kubeConfig"     // $KUBECONFIG or ~/.kube/config, current context
)

// ValidateAuthType reports an auth_type this package does not know; allowNone
// says whether the component can work without the API.
func ValidateAuthType(authType string, allowNone bool) error {
	switch authType {
	case AuthServiceAccount, AuthKubeConfig:
		return nil
	case AuthNone:
		if allowNone {
			return nil
		}
		return fmt.Errorf("auth_type %q: want %s or %s", authType, AuthServiceAccount, AuthKubeConfig)
	}
	if allowNone {
		return fmt.Errorf("auth_type %q: want %s, %s or %s", authType, AuthNone, AuthServiceAccount, AuthKubeConfig)
	}
	return fmt.Errorf("auth_type %q: want %s or %s", authType, AuthServiceAccount, AuthKubeConfig)
}

// RestConfig returns the client configuration for authType, or nil for none.
func RestConfig(authType string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch authType {
	case AuthServiceAccount:
		cfg, err = rest.InClusterConfig()
	case AuthKubeConfig:
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	case AuthNone:
		return nil, nil
	default:
		return nil, ValidateAuthType(authType, true)
	}
	if err != nil {
		return nil, fmt.Errorf("auth_type %s: %w", authType, err)
	}
	return cfg, nil
}
