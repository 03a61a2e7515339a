package manifests

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/config"
)

// Names the manifests and the embedded configs share.
const (
	agentName   = "otelcol-k8ssec-agent"
	gatewayName = "otelcol-k8ssec-gateway"
	rulesName   = "otelcol-k8ssec-rules" // the gateway's rules tier: Deployment, headless Service, ServiceAccount
	leaseName   = "otelcol-k8ssec-kube-events"
)

func load(t *testing.T) []Object {
	t.Helper()
	objs, err := Load()
	require.NoError(t, err)
	return objs
}

// all returns the objects of type T.
func all[T runtime.Object](objs []Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the object of type T named name, failing when there is none.
func one[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, objs []Object, name string) T {
	t.Helper()
	for _, v := range all[T](objs) {
		if v.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s in the manifests", zero, name)
	return zero
}

func TestEveryDocumentIsATypedObject(t *testing.T) {
	objs := load(t)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[fmt.Sprintf("%T", o.Obj)]++
	}
	assert.Equal(t, map[string]int{
		"*v1.Namespace": 1, "*v1.ServiceAccount": 3,
		"*v1.ClusterRole": 2, "*v1.ClusterRoleBinding": 2, "*v1.Role": 1, "*v1.RoleBinding": 1,
		"*v1.DaemonSet": 1, "*v1.Deployment": 2, "*v1.Service": 2,
	}, kinds)
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	// The decoder Load uses must refuse what kubectl --validate=strict refuses,
	// or a misspelt security setting would be silently ignored.
	files = fakeFS(t, map[string]string{
		"kustomization.yaml": "resources: [ds.yaml]\n",
		"ds.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n" +
			"  - name: c\n    image: i\n    securityContext: {readOnlyRootFileSystem: true}\n",
	})
	_, err := Load()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "readOnlyRootFileSystem")
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	listed, err := Resources()
	require.NoError(t, err)
	names, err := Files()
	require.NoError(t, err)
	for _, n := range names {
		if strings.HasSuffix(n, ".yaml") && n != "kustomization.yaml" {
			assert.Contains(t, listed, n, "%s is not in kustomization.yaml: kubectl apply -k would skip it", n)
		}
	}
}

func TestNamespacedObjectsAreInTheNamespace(t *testing.T) {
	for _, o := range load(t) {
		m, ok := o.Obj.(metav1.Object)
		require.True(t, ok)
		switch o.Obj.(type) {
		case *corev1.Namespace, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding:
			assert.Empty(t, m.GetNamespace(), "%s: %s is cluster-scoped", o.File, m.GetName())
		default:
			assert.Equal(t, Namespace, m.GetNamespace(), "%s: %s", o.File, m.GetName())
		}
	}
}

// The workloads run the embedded configs under the identities the bindings name.
func TestWorkloadsMatchConfigsAndBindings(t *testing.T) {
	objs := load(t)
	ds := one[*appsv1.DaemonSet](t, objs, agentName)
	dep := one[*appsv1.Deployment](t, objs, gatewayName)
	// The agent runs the slim build; the gateway tiers the image's entrypoint, the full one.
	for _, w := range []struct {
		config  string
		spec    corev1.PodSpec
		sa      string
		command []string
	}{{"agent", ds.Spec.Template.Spec, agentName, []string{"/otelcol-k8ssec-agent"}}, {"gateway", dep.Spec.Template.Spec, gatewayName, nil},
		{"gateway-rules", one[*appsv1.Deployment](t, objs, rulesName).Spec.Template.Spec, rulesName, nil}} {
		require.Len(t, w.spec.Containers, 1)
		assert.Equal(t, []string{"--config", "k8ssec:" + w.config}, w.spec.Containers[0].Args)
		assert.Equal(t, w.command, w.spec.Containers[0].Command, w.config)
		assert.Contains(t, config.Names(), w.config)
		assert.Equal(t, w.sa, w.spec.ServiceAccountName)
		one[*corev1.ServiceAccount](t, objs, w.sa)
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
		require.Len(t, b.Subjects, 1)
		assert.Equal(t, rbacv1.Subject{Kind: "ServiceAccount", Name: b.Name, Namespace: Namespace}, b.Subjects[0])
		assert.Equal(t, b.Name, b.RoleRef.Name, "binding %s binds its own role", b.Name)
		one[*rbacv1.ClusterRole](t, objs, b.RoleRef.Name)
	}
	rb := one[*rbacv1.RoleBinding](t, objs, gatewayName+"-leader")
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: gatewayName, Namespace: Namespace}}, rb.Subjects)
	one[*rbacv1.Role](t, objs, rb.RoleRef.Name)

	env := map[string]*corev1.EnvVarSource{}
	for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.ValueFrom
	}
	require.Contains(t, env, "K8S_NODE_NAME")
	assert.Equal(t, "spec.nodeName", env["K8S_NODE_NAME"].FieldRef.FieldPath)

	// kube_events' Lease identity: the pod's name, stable across container restarts.
	var podName *corev1.EnvVarSource
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "POD_NAME" {
			podName = e.ValueFrom
		}
	}
	require.NotNil(t, podName, "the gateway sets POD_NAME")
	assert.Equal(t, "metadata.name", podName.FieldRef.FieldPath)
}

// The paths, ports and names that the configs default to are the ones the
// manifests provide.
func TestConfigDefaultsMatchManifests(t *testing.T) {
	objs := load(t)
	agentCfg, err := config.Get("agent")
	require.NoError(t, err)
	gatewayCfg, err := config.Get("gateway")
	require.NoError(t, err)

	mounts := func(c corev1.Container) []string {
		var out []string
		for _, m := range c.VolumeMounts {
			out = append(out, m.MountPath)
		}
		return out
	}
	ds := one[*appsv1.DaemonSet](t, objs, agentName)
	for _, p := range []string{"/var/lib/otelcol-k8ssec/agent", "/etc/otelcol-k8ssec/tls"} {
		assert.Contains(t, string(agentCfg), p)
		assert.Contains(t, mounts(ds.Spec.Template.Spec.Containers[0]), p)
	}
	dep := one[*appsv1.Deployment](t, objs, gatewayName)
	for _, p := range []string{"/var/lib/otelcol-k8ssec/gateway", "/etc/otelcol-k8ssec/tls"} {
		assert.Contains(t, string(gatewayCfg), p)
		assert.Contains(t, mounts(dep.Spec.Template.Spec.Containers[0]), p)
	}

	svc := one[*corev1.Service](t, objs, gatewayName)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, svc.Spec.Selector, "the Service selects the gateway pods")
	ports := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		ports[p.Port] = p.TargetPort.StrVal
	}
	assert.Equal(t, map[int32]string{4317: "otlp-grpc", 9765: "audit-webhook"}, ports)
	for port, name := range ports {
		assert.Contains(t, string(gatewayCfg), fmt.Sprintf("0.0.0.0:%d", port))
		assert.True(t, slices.ContainsFunc(dep.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == name && cp.ContainerPort == port
		}), "gateway container port %s/%d", name, port)
	}
	// The agent's default gateway address is this Service's.
	assert.Contains(t, string(agentCfg), fmt.Sprintf("%s.%s.svc:4317", gatewayName, Namespace))

	// The Role's resourceNames are the Lease (and checkpoint ConfigMap) the gateway uses.
	assert.Contains(t, string(gatewayCfg), "lease_name: "+leaseName)
	role := one[*rbacv1.Role](t, objs, gatewayName+"-leader")
	var named int
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 {
			assert.Equal(t, []string{leaseName}, r.ResourceNames)
			named++
		}
	}
	assert.Equal(t, 2, named, "get/update on the Lease and on the ConfigMap are scoped by name")
}

// fakeFS makes Load read m instead of the embedded manifests until the test ends.
func fakeFS(t *testing.T, m map[string]string) fs.FS {
	t.Helper()
	mfs := fstest.MapFS{}
	for name, data := range m {
		mfs[name] = &fstest.MapFile{Data: []byte(data)}
	}
	orig := files
	t.Cleanup(func() { files = orig })
	return mfs
}

// The front tier finds the rules tier through the headless Service its DNS
// resolver is pointed at: one address per ready rules pod, on the port the
// rules config listens on, with the files the rules config reads mounted.
func TestRulesTierMatchesFrontAndConfig(t *testing.T) {
	objs := load(t)
	gatewayCfg, err := config.Get("gateway")
	require.NoError(t, err)
	rulesCfg, err := config.Get("gateway-rules")
	require.NoError(t, err)

	svc := one[*corev1.Service](t, objs, rulesName)
	assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "headless: the resolver must see every replica")
	dep := one[*appsv1.Deployment](t, objs, rulesName)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, svc.Spec.Selector, "the Service selects the rules pods")
	front := one[*appsv1.Deployment](t, objs, gatewayName)
	assert.NotEqual(t, front.Spec.Selector.MatchLabels, svc.Spec.Selector, "and not the front's")
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, int32(4317), svc.Spec.Ports[0].Port)
	assert.Contains(t, string(gatewayCfg), fmt.Sprintf("%s.%s.svc.cluster.local", rulesName, Namespace))
	assert.Contains(t, string(gatewayCfg), `port: "4317"`)
	assert.Contains(t, string(rulesCfg), "0.0.0.0:4317")

	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"--config", "k8ssec:gateway-rules"}, c.Args)
	var mounts []string
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	for _, p := range []string{"/var/lib/otelcol-k8ssec/rules", "/etc/otelcol-k8ssec/tls"} {
		assert.Contains(t, string(rulesCfg), p)
		assert.Contains(t, mounts, p)
	}
	assert.Equal(t, ptr(false), dep.Spec.Template.Spec.AutomountServiceAccountToken, "the rules tier reads nothing from the API")
}
