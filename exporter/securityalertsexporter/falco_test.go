package securityalertsexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// falcoOutput mirrors Falco's documented JSON output (json_output: true,
// json_include_output_property, json_include_tags_property), which its
// http_output posts and falcosidekick decodes.
type falcoOutput struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
}

// decodeFalcoStrict decodes b, refusing any field Falco does not have.
func decodeFalcoStrict(t *testing.T, b []byte) falcoOutput {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var out falcoOutput
	require.NoError(t, dec.Decode(&out), "body: %s", b)
	return out
}

func TestFalcoFormat(t *testing.T) {
	srv := newCaptureServer(t)
	exp, _ := newTestExporter(t, testConfig(FormatFalco, srv.URL))

	ld := plog.NewLogs()
	appendAlert(ld, alertSpec{
		rule: "Shell in a container", id: "RT-0001", severity: "high", event: "process.exec",
		output: "shell sh started in shop/web-0",
		attrs:  map[string]any{"k8ssec.process.exec_id": "x-1"},
		resource: map[string]any{
			"process.executable.name": "sh", "process.command_line": "sh -c id", "process.pid": int64(4242),
			"container.id": "c0ffee", "k8s.namespace.name": "shop", "k8s.pod.name": "web-0", "k8s.node.name": "node-1",
		},
	})
	appendAlert(ld, execAlert("audit-1"))
	appendAlert(ld, alertSpec{
		rule: "Path traversal in a request", id: "ING-0003", severity: "critical", event: "http.access",
		output: "GET /../../etc/passwd from 198.51.100.9",
		attrs:  map[string]any{"url.path": "/../../etc/passwd", "http.response.status_code": int64(400), "client.address": "198.51.100.9"},
	})
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))

	bodies := srv.requests()
	require.Len(t, bodies, 3, "one POST per alert, as Falco sends them")
	kernel, audit, ingress := decodeFalcoStrict(t, bodies[0]), decodeFalcoStrict(t, bodies[1]), decodeFalcoStrict(t, bodies[2])

	assert.Equal(t, "syscall", kernel.Source)
	assert.Equal(t, "Shell in a container", kernel.Rule)
	assert.Equal(t, "Error", kernel.Priority)
	assert.Equal(t, "node-1", kernel.Hostname)
	assert.Equal(t, "shell sh started in shop/web-0", kernel.Output)
	assert.Equal(t, []string{"k8s", "mitre.T1609"}, kernel.Tags)
	assert.True(t, kernel.Time.Equal(eventTime))
	assert.Equal(t, "sh", kernel.OutputFields["proc.name"])
	assert.Equal(t, "sh -c id", kernel.OutputFields["proc.cmdline"])
	assert.Equal(t, json.Number("4242"), kernel.OutputFields["proc.pid"], "typed: a number, not a string")
	assert.Equal(t, "c0ffee", kernel.OutputFields["container.id"])
	assert.Equal(t, "shop", kernel.OutputFields["k8s.ns.name"])
	assert.Equal(t, "web-0", kernel.OutputFields["k8s.pod.name"])
	assert.NotContains(t, kernel.OutputFields, "security_rule.name")

	assert.Equal(t, "k8s_audit", audit.Source)
	assert.Equal(t, "Warning", audit.Priority)
	assert.Equal(t, "alice", audit.OutputFields["ka.user.name"])
	assert.Equal(t, "create", audit.OutputFields["ka.verb"])
	assert.Equal(t, "audit-1", audit.OutputFields["ka.auditid"])
	assert.Equal(t, "203.0.113.7", audit.OutputFields["client.address"], "ours where Falco has no name")

	assert.Equal(t, "k8ssec_ingress", ingress.Source)
	assert.Equal(t, "Critical", ingress.Priority)
	assert.Equal(t, json.Number("400"), ingress.OutputFields["http.response.status_code"])
	assert.NotEmpty(t, ingress.Hostname, "no node: this host's name")
}

// Falco writes nine fractional digits, always.
func TestFalcoTimeHasNanoseconds(t *testing.T) {
	a := Alert{Time: time.Date(2026, 1, 2, 3, 4, 5, 100000000, time.UTC)}
	b, err := renderFalco(&a, "h")
	require.NoError(t, err)
	assert.Contains(t, string(b), `"time":"2026-01-02T03:04:05.100000000Z"`)
}
