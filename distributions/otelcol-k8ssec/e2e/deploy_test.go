package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deployEnv is the environment an embedded config expects in its pod, with test
// values: what the manifests set (K8S_NODE_NAME from the downward API) and state
// directories in the test's temporary directory. The gateway tiers' backend is
// opt-in: backendEnv adds it.
func deployEnv(t *testing.T, name string) []string {
	t.Helper()
	switch name {
	case "agent":
		return []string{"K8S_NODE_NAME=node-1", "K8SSEC_STORAGE_DIR=" + filepath.Join(t.TempDir(), "agent")}
	case "gateway":
		return []string{"K8SSEC_BACKEND_ENDPOINT=", "K8SSEC_STORAGE_DIR=" + filepath.Join(t.TempDir(), "gateway")}
	case "gateway-rules":
		return []string{"K8SSEC_BACKEND_ENDPOINT=", "K8SSEC_STORAGE_DIR=" + filepath.Join(t.TempDir(), "rules")}
	}
	return nil
}

const backendEnv = "K8SSEC_BACKEND_ENDPOINT=backend.example.com:4317"

func validate(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"validate"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// The configs of the Kubernetes deployment (the agent, the gateway's front and
// rules tiers) must be embedded and valid for the components the binary was
// built with; the gateway tiers as shipped (alerts on standard output) and with
// the backend set.
func TestDeployConfigsValidate(t *testing.T) {
	for _, name := range []string{"agent", "gateway", "gateway-rules"} {
		t.Run(name, func(t *testing.T) {
			out, err := validate(t, deployEnv(t, name), "--config", "k8ssec:"+name)
			assert.NoError(t, err, "validate k8ssec:%s:\n%s", name, out)
			out, err = validate(t, append(deployEnv(t, name), backendEnv), "--config", "k8ssec:"+name)
			assert.NoError(t, err, "validate k8ssec:%s with %s:\n%s", name, backendEnv, out)
		})
	}
}

// The agent refuses enforcement without the exec events it kills in: what a user
// uncommenting the example after trimming `events` would meet at validate time.
func TestAgentEnforcementOverrideIsValidated(t *testing.T) {
	env := deployEnv(t, "agent")
	out, err := validate(t, env, "--config", "k8ssec:agent",
		"--set", "receivers::ebpf::enforcement::kill_comms=[xmrig]")
	assert.NoError(t, err, "enforcement on top of the agent config:\n%s", out)
	out, err = validate(t, env, "--config", "k8ssec:agent",
		"--set", "receivers::ebpf::enforcement::kill_paths=[nc]")
	require.Error(t, err, "a relative kill path passed:\n%s", out)
	assert.Contains(t, string(out), `enforcement.kill_paths: "nc" must be an absolute path`)
}
