package securityalertsexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// assertGolden compares a JSON body with testdata/name, both indented.
func assertGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, body, "", "  "), "not JSON: %s", body)
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test -run %s -update writes it", t.Name())
	assert.Equal(t, string(want), pretty.String())
}

// sendOne sends execAlert through an exporter of cfg and returns the body
// the endpoint received.
func sendOne(t *testing.T, cfg *Config, srv *captureServer) []byte {
	t.Helper()
	exp, _ := newTestExporter(t, cfg)
	ld := plog.NewLogs()
	appendAlert(ld, execAlert("audit-1"))
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	bodies := srv.requests()
	require.Len(t, bodies, 1)
	return bodies[0]
}

func TestWebhookDefaultBodyGolden(t *testing.T) {
	srv := newCaptureServer(t)
	assertGolden(t, "webhook_flat.golden.json", sendOne(t, testConfig(FormatWebhook, srv.URL), srv))
}

func TestWebhookTemplateBodyGolden(t *testing.T) {
	srv := newCaptureServer(t)
	cfg := testConfig(FormatWebhook, srv.URL)
	cfg.Webhook.Template = `{"title": {{ json .Rule }}, "severity": {{ json .Severity }},
 "text": {{ json .Output }}, "pod": {{ json (attr . "k8s.pod.name") }},
 "missing": {{ json (attr . "no.such.attribute") }}, "evidence": {{ json .EvidenceIDs }}}`
	assertGolden(t, "webhook_template.golden.json", sendOne(t, cfg, srv))
}

func TestSlackBodyGolden(t *testing.T) {
	srv := newCaptureServer(t)
	assertGolden(t, "slack.golden.json", sendOne(t, testConfig(FormatSlack, srv.URL), srv))
}

// mattermostPayload is what Mattermost's (and Rocket.Chat's) incoming
// webhooks read of a Slack-compatible body: text and the classic attachment
// fields. They ignore blocks.
type mattermostPayload struct {
	Text        string `json:"text"`
	Attachments []struct {
		Color    string `json:"color"`
		Fallback string `json:"fallback"`
		Title    string `json:"title"`
		Text     string `json:"text"`
		Fields   []struct {
			Title string `json:"title"`
			Value string `json:"value"`
			Short bool   `json:"short"`
		} `json:"fields"`
	} `json:"attachments"`
}

// The slack body read as Mattermost reads it still carries the severity (as
// colour), the rule, the output, the pod and the MITRE link.
func TestSlackBodyAsMattermost(t *testing.T) {
	srv := newCaptureServer(t)
	body := sendOne(t, testConfig(FormatSlack, srv.URL), srv)
	var mm mattermostPayload
	require.NoError(t, json.Unmarshal(body, &mm))
	require.Len(t, mm.Attachments, 1)
	att := mm.Attachments[0]
	assert.Equal(t, severityColours["medium"], att.Color)
	assert.Contains(t, att.Title, "Exec or attach into a pod")
	assert.Equal(t, "exec into pod shop/web-0 by alice (audit audit-1)", att.Text)
	fields := map[string]string{}
	for _, f := range att.Fields {
		fields[f.Title] = f.Value
	}
	assert.Equal(t, "shop/web-0", fields["Pod"])
	assert.Contains(t, fields["MITRE ATT&CK"], "https://attack.mitre.org/techniques/T1609/")
	assert.NotEmpty(t, mm.Text)
}
