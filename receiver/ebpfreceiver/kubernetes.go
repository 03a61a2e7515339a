package ebpfreceiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/podidentity"
)

// Ways to reach the Kubernetes API for pod identity.
const (
	authNone           = k8sclient.AuthNone           // no API: container id and runtime from the cgroup path only
	authServiceAccount = k8sclient.AuthServiceAccount // in a pod (the DaemonSet agent)
	authKubeConfig     = k8sclient.AuthKubeConfig     // $KUBECONFIG or ~/.kube/config
)

// KubernetesConfig gives events the identity of their pod.
type KubernetesConfig struct {
	// AuthType is none, serviceAccount or kubeConfig. With none, events still
	// carry container.id and the runtime, read from the process's cgroup.
	AuthType string `mapstructure:"auth_type"`
	// NodeName limits the pod watch to this node's pods; in the DaemonSet it
	// comes from the downward API (${env:K8S_NODE_NAME}).
	NodeName string `mapstructure:"node_name"`
}

func (c KubernetesConfig) validate() error {
	switch c.AuthType {
	case authNone, authServiceAccount, authKubeConfig:
		return nil
	}
	return fmt.Errorf("kubernetes.auth_type %q: want %s, %s or %s", c.AuthType, authNone, authServiceAccount, authKubeConfig)
}

func (c KubernetesConfig) client() (*k8sclient.CoreV1, error) {
	cfg, err := k8sclient.RestConfig(c.AuthType)
	if err != nil || cfg == nil {
		if err != nil {
			err = fmt.Errorf("kubernetes.%w", err)
		}
		return nil, err
	}
	return k8sclient.NewCoreV1(cfg)
}

// startPodIdentity starts the resolver. Without a cgroup v2 hierarchy events go
// out without pod identity, and the receiver says so once.
func startPodIdentity(ctx context.Context, c KubernetesConfig, logger *zap.Logger) (*podidentity.Resolver, error) {
	client, err := c.client()
	if err != nil {
		return nil, err
	}
	r := podidentity.New(podidentity.Options{Client: client, NodeName: c.NodeName, SyncTimeout: podSyncTimeout,
		OnLateSync: func() { logger.Info("The pod watch has synced: events carry their pod again") }})
	err = r.Start(ctx)
	switch {
	case err == nil:
	case errors.Is(err, podidentity.ErrNoCgroup2):
		logger.Warn("No cgroup v2 hierarchy: events carry no container or pod identity", zap.Error(err))
	case errors.Is(err, podidentity.ErrNotSynced):
		// Monitoring (and enforcement) must not wait for the apiserver: events
		// go out with their container, and their pod once the watch syncs.
		logger.Warn("Starting without pod metadata: events carry their container id and k8ssec.k8s.pod.pending "+
			"until the pod watch syncs; it keeps retrying", zap.Error(err))
	default:
		r.Stop()
		return nil, err
	}
	return r, nil
}

// podSyncTimeout bounds how long Start waits for the pod watch before it goes
// on without it: a node's pods list in well under a second when the apiserver
// answers.
const podSyncTimeout = 5 * time.Second

// identityOf resolves the container and pod of an event's process.
func identityOf(r *podidentity.Resolver, cgroupID uint64, tgid uint32) podidentity.Identity {
	if r == nil {
		return podidentity.Identity{}
	}
	id := r.Lookup(cgroupID)
	if !id.Resolved {
		// A cgroup younger than the last walk, or a cgroup v1-only host.
		if byPID, err := r.LookupPID(int(tgid)); err == nil {
			id = byPID
		}
	}
	return id
}
