package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/manifests"
)

// The slim agent build loads the DaemonSet's config, and holds what that config
// uses and nothing else (distributions/otelcol-k8ssec-agent/builder-config.yaml).
func TestAgentBuildLoadsAgentConfig(t *testing.T) {
	cmd := exec.Command(agentBinary(t), "validate", "--config", "k8ssec:agent")
	cmd.Env = append(os.Environ(), deployEnv(t, "agent")...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the agent build cannot load k8ssec:agent:\n%s", out)

	out, err = exec.Command(agentBinary(t), "components").Output()
	require.NoError(t, err)
	var comps map[string]any
	require.NoError(t, yaml.Unmarshal(out, &comps))
	names := func(kind string) []string {
		var n []string
		list, _ := comps[kind].([]any)
		for _, c := range list {
			name := c.(map[string]any)["name"].(string)
			if len(n) == 0 || n[len(n)-1] != name { // otlp_grpc and otlp_http are listed twice (their aliases)
				n = append(n, name)
			}
		}
		return n
	}
	assert.ElementsMatch(t, []string{"ebpf", "ingress_log"}, names("receivers"))
	assert.ElementsMatch(t, []string{"batch", "memory_limiter", "resource", "security_rules"}, names("processors"))
	assert.ElementsMatch(t, []string{"otlp_grpc", "otlp_http"}, names("exporters"))
	assert.ElementsMatch(t, []string{"file_storage", "health_check"}, names("extensions"))
	assert.Empty(t, names("connectors"))
}

// The agent's components link neither client-go's scheme of every API group (a
// typed client's) nor stanza's adapter (every operator): both are initialized
// at start, and cost the agent's RSS 7 and 1.5 MiB (docs/builds.md).
func TestAgentBuildLinksNoHeavyInits(t *testing.T) {
	pkgs := []string{"./receiver/ebpfreceiver", "./receiver/ingresslogreceiver", "./processor/securityrulesprocessor", "./provider/embeddedprovider"}
	cmd := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = filepath.Join("..", "..", "..")
	out, err := cmd.Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "k8s.io/client-go/tools/cache") // the list is the agent's
	for _, heavy := range []string{"k8s.io/client-go/kubernetes/scheme",
		"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/adapter"} {
		assert.NotContains(t, deps, heavy)
	}
}

// Every shipped example config builds its pipelines in the full build (validate
// creates every component: a factory that breaks at the pin fails here), and the
// example rule files pass their own tests, strictly (every name in the vocabulary).
func TestExampleConfigsValidate(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "examples"))
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	var configs int
	for _, f := range files {
		if strings.HasSuffix(f, "-rules.yaml") {
			out, err := exec.Command(secrulesBinary(t), "test", "-strict", "-rules", f).CombinedOutput()
			assert.NoError(t, err, "secrules test %s:\n%s", f, out)
			continue
		}
		if strings.HasSuffix(f, "-rbac.yaml") {
			// Kubernetes RBAC for an example, which its e2e test applies to a real apiserver.
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			_, err = manifests.Decode(data)
			assert.NoError(t, err, f)
			continue
		}
		configs++
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(binary(t), "validate", "--config", f)
			cmd.Dir = dir // rule files are named relative to it
			cmd.Env = append(os.Environ(), "K8SSEC_STORAGE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "validate %s:\n%s", f, out)
		})
	}
	assert.GreaterOrEqual(t, configs, 4)
}

// The components issue 17 added are each in a shipped config the tests load: the
// examples, or the gateway's own.
func TestAddedComponentsAreInAShippedConfig(t *testing.T) {
	var all strings.Builder
	for _, glob := range []string{filepath.Join("..", "examples", "*.yaml"), filepath.Join("..", "config", "*.yaml")} {
		files, err := filepath.Glob(glob)
		require.NoError(t, err)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			all.Write(b)
		}
	}
	for _, c := range []string{"resourcedetection:", "transform/", "deltatocumulative:", "filter/", "attributes/", "resource:", "routing/",
		"count/", "prometheus:", "prometheusremotewrite:", "kafka/", "kafka:", "k8sobjects:", "zpages:", "k8s_leader_elector:"} {
		assert.Contains(t, all.String(), "\n  "+c, "no shipped config uses %s", strings.TrimRight(c, ":/"))
	}
}

func secrulesBinary(t *testing.T) string { return built(t, "secrules") }
