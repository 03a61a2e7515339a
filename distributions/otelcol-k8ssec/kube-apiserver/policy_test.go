// Package kubeapiserver checks the kube-apiserver files shipped in this directory with
// the apiserver's own loaders: the audit policy is evaluated the way kube-apiserver
// evaluates it, the webhook kubeconfig is parsed the way its webhook backend parses it.
package kubeapiserver

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/tools/clientcmd"
)

func TestAuditPolicyLevels(t *testing.T) {
	p, err := policy.LoadPolicyFromFile("audit-policy.yaml")
	require.NoError(t, err)
	assert.True(t, p.OmitManagedFields)
	eval := policy.NewPolicyRuleEvaluator(p)

	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"system:authenticated"}}
	node := &user.DefaultInfo{Name: "system:node:n1", Groups: []string{"system:nodes", "system:authenticated"}}
	res := func(u user.Info, verb, group, resource, sub, ns string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, APIGroup: group, Resource: resource,
			Subresource: sub, Namespace: ns, ResourceRequest: true}
	}
	path := func(u user.Info, p string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: "get", Path: p}
	}

	cases := []struct {
		name  string
		attrs authorizer.Attributes
		want  audit.Level
	}{
		{"healthz", path(alice, "/healthz"), audit.LevelNone},
		{"readyz verbose", path(alice, "/readyz/etcd"), audit.LevelNone},
		{"livez", path(alice, "/livez"), audit.LevelNone},
		{"discovery", path(alice, "/apis"), audit.LevelMetadata},
		{"events list", res(alice, "list", "", "events", "", "default"), audit.LevelNone},
		{"events.k8s.io create", res(node, "create", "events.k8s.io", "events", "", "default"), audit.LevelNone},
		{"events deleted", res(alice, "deletecollection", "", "events", "", "default"), audit.LevelMetadata},
		{"events.k8s.io delete", res(alice, "delete", "events.k8s.io", "events", "", "default"), audit.LevelMetadata},
		{"lease renew", res(node, "update", "coordination.k8s.io", "leases", "", "kube-node-lease"), audit.LevelNone},
		{"node reads itself", res(node, "get", "", "nodes", "", ""), audit.LevelNone},
		{"secret get", res(alice, "get", "", "secrets", "", "kube-system"), audit.LevelMetadata},
		{"service create", res(alice, "create", "", "services", "", "default"), audit.LevelRequest},
		{"ingress patch", res(alice, "patch", "networking.k8s.io", "ingresses", "", "default"), audit.LevelRequest},
		{"service list", res(alice, "list", "", "services", "", "default"), audit.LevelMetadata},
		{"secret create", res(alice, "create", "", "secrets", "", "default"), audit.LevelMetadata},
		{"configmap update", res(alice, "update", "", "configmaps", "", "default"), audit.LevelRequest},
		{"configmap read", res(alice, "get", "", "configmaps", "", "default"), audit.LevelMetadata},
		{"tokenreview", res(alice, "create", "authentication.k8s.io", "tokenreviews", "", ""), audit.LevelMetadata},
		{"token request", res(alice, "create", "", "serviceaccounts", "token", "default"), audit.LevelRequest},
		{"pod create", res(alice, "create", "", "pods", "", "default"), audit.LevelRequestResponse},
		{"pod delete", res(alice, "delete", "", "pods", "", "default"), audit.LevelRequestResponse},
		{"pod list", res(alice, "list", "", "pods", "", "default"), audit.LevelMetadata},
		{"pod exec", res(alice, "create", "", "pods", "exec", "default"), audit.LevelRequestResponse},
		{"pod exec websocket", res(alice, "get", "", "pods", "exec", "default"), audit.LevelRequestResponse},
		{"pod attach", res(alice, "create", "", "pods", "attach", "default"), audit.LevelRequestResponse},
		{"pod portforward", res(alice, "create", "", "pods", "portforward", "default"), audit.LevelRequestResponse},
		{"ephemeral container", res(alice, "patch", "", "pods", "ephemeralcontainers", "default"), audit.LevelRequestResponse},
		{"pod status by kubelet", res(node, "patch", "", "pods", "status", "default"), audit.LevelMetadata},
		{"node label", res(alice, "patch", "", "nodes", "", ""), audit.LevelRequestResponse},
		{"clusterrolebinding create", res(alice, "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""), audit.LevelRequestResponse},
		{"serviceaccount create", res(alice, "create", "", "serviceaccounts", "", "default"), audit.LevelRequestResponse},
		{"webhook config", res(alice, "create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""), audit.LevelRequestResponse},
		{"daemonset create", res(alice, "create", "apps", "daemonsets", "", "default"), audit.LevelRequest},
		{"deployment get", res(alice, "get", "apps", "deployments", "", "default"), audit.LevelMetadata},
		{"something else", res(alice, "get", "example.com", "widgets", "", "default"), audit.LevelMetadata},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := eval.EvaluatePolicyRule(c.attrs)
			assert.Equal(t, c.want, got.Level)
			if got.Level != audit.LevelNone {
				assert.True(t, slices.Contains(got.OmitStages, audit.StageRequestReceived),
					"RequestReceived must be omitted, omitStages=%v", got.OmitStages)
			}
		})
	}
}

func TestAuditWebhookKubeconfig(t *testing.T) {
	cfg, err := clientcmd.LoadFromFile("audit-webhook-kubeconfig.yaml")
	require.NoError(t, err)
	// clientcmd.Validate would also open the certificate files, which a template lacks.
	ctx := cfg.Contexts[cfg.CurrentContext]
	require.NotNil(t, ctx, "current-context %q", cfg.CurrentContext)
	cluster, authInfo := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	require.NotNil(t, cluster)
	require.NotNil(t, authInfo)
	assert.Equal(t, "https://otelcol-k8ssec-gateway.otelcol-k8ssec.svc:9765/k8s-audit", cluster.Server)
	assert.NotEmpty(t, cluster.CertificateAuthority)
	assert.NotEmpty(t, authInfo.ClientCertificate)
	assert.NotEmpty(t, authInfo.ClientKey)
}
