package manifests

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// agentCapabilities is the documented set (agent-daemonset.yaml says what each is
// for); a capability added to the manifest without a reason here fails the test.
// Not SYS_RESOURCE: only kernels before 5.11 need it, and a node whose bounding
// set lacks it refuses the pod (docs/install.md, "Kernels before 5.11").
var agentCapabilities = []corev1.Capability{"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "KILL"}

// agentHostPaths are the host paths the agent mounts, and whether read-only.
var agentHostPaths = map[string]bool{
	"/sys/kernel/tracing":           true,
	"/sys/fs/cgroup":                true,
	"/var/lib/otelcol-k8ssec/agent": false,
	"/var/log/containers":           true, // ingress controllers' logs (ingress_log)
	"/var/log/pods":                 true,
}

type workload struct {
	name string
	spec corev1.PodSpec
}

// workloads returns the agent and the gateway's two tiers (front, rules).
func workloads(t *testing.T) (agent workload, gateway []workload) {
	objs := load(t)
	ds := one[*appsv1.DaemonSet](t, objs, agentName)
	front := one[*appsv1.Deployment](t, objs, gatewayName)
	rules := one[*appsv1.Deployment](t, objs, rulesName)
	require.Len(t, all[*appsv1.DaemonSet](objs), 1)
	require.Len(t, all[*appsv1.Deployment](objs), 2)
	return workload{agentName, ds.Spec.Template.Spec},
		[]workload{{gatewayName, front.Spec.Template.Spec}, {rulesName, rules.Spec.Template.Spec}}
}

func containers(s corev1.PodSpec) []corev1.Container {
	return slices.Concat(s.InitContainers, s.Containers)
}

// Properties both workloads have.
func TestContainersAreLocked(t *testing.T) {
	agent, gateway := workloads(t)
	for _, w := range append([]workload{agent}, gateway...) {
		assert.False(t, w.spec.HostNetwork, "%s: hostNetwork", w.name)
		assert.False(t, w.spec.HostIPC, "%s: hostIPC", w.name)
		for _, c := range containers(w.spec) {
			sc := c.SecurityContext
			require.NotNil(t, sc, "%s/%s: no securityContext", w.name, c.Name)
			assert.False(t, sc.Privileged != nil && *sc.Privileged, "%s/%s: privileged", w.name, c.Name)
			assert.Equal(t, ptr(false), sc.AllowPrivilegeEscalation, "%s/%s: allowPrivilegeEscalation", w.name, c.Name)
			assert.Equal(t, ptr(true), sc.ReadOnlyRootFilesystem, "%s/%s: readOnlyRootFilesystem", w.name, c.Name)
			require.NotNil(t, sc.Capabilities, "%s/%s: capabilities", w.name, c.Name)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s/%s: drop ALL", w.name, c.Name)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, seccomp(w.spec, c), "%s/%s: seccomp", w.name, c.Name)
			assert.NotNil(t, c.Resources.Limits.Memory(), "%s/%s: memory limit", w.name, c.Name)
			assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s/%s: memory limit", w.name, c.Name)
			assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s/%s: cpu request", w.name, c.Name)
		}
		for _, v := range w.spec.Volumes {
			if v.Secret != nil {
				require.NotNil(t, v.Secret.DefaultMode, "%s: secret volume %s mode", w.name, v.Name)
				assert.Zero(t, *v.Secret.DefaultMode&0o007, "%s: secret volume %s is world-readable", w.name, v.Name)
			}
		}
	}
}

func TestGatewayRunsAsNonRootWithoutCapabilities(t *testing.T) {
	_, gateway := workloads(t)
	for _, gw := range gateway {
		gatewayRunsAsNonRootWithoutCapabilities(t, gw)
	}
}

func gatewayRunsAsNonRootWithoutCapabilities(t *testing.T, gw workload) {
	assert.False(t, gw.spec.HostPID, "gateway: hostPID")
	for _, v := range gw.spec.Volumes {
		assert.Nil(t, v.HostPath, "gateway: hostPath volume %s", v.Name)
	}
	for _, c := range containers(gw.spec) {
		assert.Empty(t, c.SecurityContext.Capabilities.Add, "gateway/%s adds capabilities", c.Name)
		nonRoot := c.SecurityContext.RunAsNonRoot
		if nonRoot == nil && gw.spec.SecurityContext != nil {
			nonRoot = gw.spec.SecurityContext.RunAsNonRoot
		}
		assert.Equal(t, ptr(true), nonRoot, "gateway/%s: runAsNonRoot", c.Name)
		uid := c.SecurityContext.RunAsUser
		if uid == nil && gw.spec.SecurityContext != nil {
			uid = gw.spec.SecurityContext.RunAsUser
		}
		require.NotNil(t, uid, "gateway/%s: a numeric runAsUser lets the kubelet check runAsNonRoot", c.Name)
		assert.NotZero(t, *uid)
	}
}

func TestAgentHasOnlyTheDocumentedPrivileges(t *testing.T) {
	agent, _ := workloads(t)
	require.Len(t, agent.spec.Containers, 1)
	c := agent.spec.Containers[0]
	assert.ElementsMatch(t, agentCapabilities, c.SecurityContext.Capabilities.Add)
	assert.NotContains(t, c.SecurityContext.Capabilities.Add, corev1.Capability("SYS_ADMIN"))
	// hostPID: the events' PIDs are the host's and /proc/<pid> is read for them.
	assert.True(t, agent.spec.HostPID, "agent: hostPID (documented in agent-daemonset.yaml)")

	hostPaths := map[string]string{} // volume name -> host path
	for _, v := range agent.spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	got := map[string]bool{}
	for _, m := range c.VolumeMounts {
		if p, ok := hostPaths[m.Name]; ok {
			got[p] = m.ReadOnly
			assert.Equal(t, p, m.MountPath, "host path %s is mounted where the agent looks for it", p)
		}
	}
	assert.Equal(t, agentHostPaths, got, "host paths and their read-only flags")

	tolerateAll := slices.ContainsFunc(agent.spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	})
	assert.True(t, tolerateAll, "the agent tolerates every taint: every node is watched")
}

func TestRBACIsLeastPrivilege(t *testing.T) {
	objs := load(t)
	var rules []rbacv1.PolicyRule
	for _, r := range all[*rbacv1.ClusterRole](objs) {
		assert.Nil(t, r.AggregationRule, "%s aggregates other roles", r.Name)
		rules = append(rules, r.Rules...)
	}
	for _, r := range all[*rbacv1.Role](objs) {
		rules = append(rules, r.Rules...)
	}
	require.NotEmpty(t, rules)
	forbiddenVerbs := []string{"*", "escalate", "bind", "impersonate", "delete", "deletecollection"}
	for _, r := range rules {
		assert.Empty(t, r.NonResourceURLs, "rule %+v", r)
		for _, g := range r.APIGroups {
			assert.NotEqual(t, "*", g, "wildcard API group in %+v", r)
		}
		for _, res := range r.Resources {
			assert.NotContains(t, res, "*", "wildcard resource in %+v", r)
			assert.NotEqual(t, "secrets", res, "secrets in %+v", r)
			assert.NotContains(t, res, "/", "subresource %s in %+v", res, r)
		}
		for _, v := range r.Verbs {
			assert.NotContains(t, forbiddenVerbs, v, "verb %s in %+v", v, r)
		}
	}
	// Writes happen only in the gateway's namespace (a Role), never cluster-wide.
	for _, cr := range all[*rbacv1.ClusterRole](objs) {
		for _, r := range cr.Rules {
			for _, v := range r.Verbs {
				assert.Contains(t, []string{"get", "list", "watch"}, v, "%s: cluster-wide %s", cr.Name, v)
			}
		}
	}
}

func seccomp(s corev1.PodSpec, c corev1.Container) corev1.SeccompProfileType {
	if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
		return c.SecurityContext.SeccompProfile.Type
	}
	if s.SecurityContext != nil && s.SecurityContext.SeccompProfile != nil {
		return s.SecurityContext.SeccompProfile.Type
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

// What the agent writes on the host survives `kubectl delete -k`: install.md's
// uninstall section must name every writable hostPath, with the command.
func TestUninstallNamesWhatStaysOnTheNodes(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/install.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(doc), "\n### Uninstall\n")
	require.True(t, ok, "docs/install.md has no Uninstall section")
	section, _, _ = strings.Cut(section, "\n## ")
	agent, _ := workloads(t)
	writable := 0
	for _, v := range agent.spec.Volumes {
		if v.HostPath == nil || agentHostPaths[v.HostPath.Path] {
			continue // read-only: nothing of ours is left there
		}
		writable++
		assert.Contains(t, section, v.HostPath.Path, "the uninstall section does not name %s", v.HostPath.Path)
		parent := v.HostPath.Path[:strings.LastIndex(v.HostPath.Path, "/")]
		assert.Contains(t, section, "rm -rf "+parent, "the command that removes %s", v.HostPath.Path)
	}
	assert.Positive(t, writable)
}
