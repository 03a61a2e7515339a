package manifests

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// A node whose kubelet has written no container log yet, or keeps them elsewhere,
// has no /var/log/pods: a hostPath of type Directory would keep the agent from
// starting there.
func TestAgentLogDirectoriesAreCreatedWhenMissing(t *testing.T) {
	ds := one[*appsv1.DaemonSet](t, load(t), agentName)
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "varlogpods" || v.Name == "varlogcontainers" {
			require.NotNil(t, v.HostPath, v.Name)
			assert.Equal(t, ptr(corev1.HostPathDirectoryOrCreate), v.HostPath.Type, "%s: %s", v.Name, v.HostPath.Path)
		}
	}
}

// TestPodLogsDirComponent applies the pod-logs-dir component's JSON patch to the
// DaemonSet, as kustomize does: its "test" operations hold (the indexes name the
// varlogpods volume and mount), and the directory is then mounted at its host path.
func TestPodLogsDirComponent(t *testing.T) {
	data, err := os.ReadFile("pod-logs-dir/kustomization.yaml")
	require.NoError(t, err)
	var component struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Patches    []struct {
			Target map[string]string `json:"target"`
			Patch  string            `json:"patch"`
		} `json:"patches"`
	}
	require.NoError(t, yaml.UnmarshalStrict(data, &component))
	assert.Equal(t, "Component", component.Kind)
	require.Len(t, component.Patches, 1)
	assert.Equal(t, map[string]string{"kind": "DaemonSet", "name": agentName}, component.Patches[0].Target)
	ops, err := yaml.YAMLToJSON([]byte(component.Patches[0].Patch))
	require.NoError(t, err)
	patch, err := jsonpatch.DecodePatch(ops)
	require.NoError(t, err)

	doc, err := json.Marshal(one[*appsv1.DaemonSet](t, load(t), agentName))
	require.NoError(t, err)
	patched, err := patch.Apply(doc)
	require.NoError(t, err, "the component no longer matches agent-daemonset.yaml's volumes")
	var ds appsv1.DaemonSet
	require.NoError(t, json.Unmarshal(patched, &ds))
	spec := ds.Spec.Template.Spec
	var hostPath, mountPath string
	for _, v := range spec.Volumes {
		if v.Name == "varlogpods" {
			hostPath = v.HostPath.Path
		}
	}
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.Name == "varlogpods" {
			mountPath = m.MountPath
			assert.True(t, m.ReadOnly)
		}
	}
	assert.Equal(t, "/var/lib/kubelet/pod-logs", hostPath)
	assert.Equal(t, hostPath, mountPath, "the symlinks in /var/log/containers name the host's path")
}
