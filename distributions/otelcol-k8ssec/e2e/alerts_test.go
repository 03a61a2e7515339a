//go:build unix

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/alertmanagertest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// docsAlertsConfig is docs/alerts.md's alerts.yaml, taken from the page itself
// so that what users copy is what this test runs.
func docsAlertsConfig(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "alerts.md"))
	require.NoError(t, err)
	const start = "```yaml\n# alerts.yaml:"
	i := bytes.Index(readme, []byte(start))
	require.GreaterOrEqual(t, i, 0, "docs/alerts.md has no ```yaml block starting with # alerts.yaml:")
	block := readme[i+len("```yaml\n"):]
	end := bytes.Index(block, []byte("```"))
	require.Greater(t, end, 0)
	return string(block[:end])
}

// TestStandaloneAlertsReachAlertmanager runs the binary with the standalone
// config and docs/alerts.md's alerts.yaml (its endpoint moved to the test's
// Alertmanager port), posts an audit stream to the webhook and finds the
// alerts in a real Alertmanager.
func TestStandaloneAlertsReachAlertmanager(t *testing.T) {
	bin := binary(t)
	am := alertmanagertest.Start(t)
	dir := t.TempDir()
	cfg := docsAlertsConfig(t)
	require.Contains(t, cfg, "endpoint: http://localhost:9093")
	alertsFile := filepath.Join(dir, "alerts.yaml")
	require.NoError(t, os.WriteFile(alertsFile, []byte(cfg), 0o600))

	auditPort, healthPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	c := start(t, bin, dir, []string{
		fmt.Sprintf("K8SSEC_AUDIT_ENDPOINT=127.0.0.1:%d", auditPort),
		"K8SSEC_OUTPUT=" + filepath.Join(dir, "out.jsonl"),
		fmt.Sprintf("K8SSEC_HEALTH_ENDPOINT=127.0.0.1:%d", healthPort),
		fmt.Sprintf("K8SSEC_METRICS_PORT=%d", metricsPort),
	}, "--config", "k8ssec:standalone", "--config", "file:"+alertsFile,
		"--set", "exporters::security_alerts::endpoint="+am.URL())
	c.waitHealthy(t, fmt.Sprintf("http://127.0.0.1:%d/", healthPort))

	events, err := os.ReadFile(filepath.Join("..", "..", "..", "exporter", "securityalertsexporter", "testdata", "audit_events.json"))
	require.NoError(t, err)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/k8s-audit", auditPort), "application/json", bytes.NewReader(events))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	want := []string{"Exec or attach into a pod", "Secret read by a non-system identity", "Anonymous request allowed"}
	got := am.WaitAlerts(60*time.Second, func(as []alertmanagertest.Alert) bool {
		seen := map[string]bool{}
		for _, a := range as {
			seen[a.Labels["alertname"]] = true
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	})
	// The runtime pack's alerts on this machine's own processes arrive too.
	for _, a := range got {
		if slices.Contains(want, a.Labels["alertname"]) {
			assert.Equal(t, "k8s_audit", a.Labels["ruleset"], "%v", a.Labels)
		}
		assert.NotEmpty(t, a.Annotations["summary"])
		for k, v := range a.Labels {
			assert.False(t, strings.HasPrefix(v, "e2e-"), "label %s=%s holds an audit ID", k, v)
		}
	}
}
