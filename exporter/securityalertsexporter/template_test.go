package securityalertsexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A template that does not parse fails validate, with where it is wrong.
func TestTemplateErrorHasPosition(t *testing.T) {
	for name, tc := range map[string]struct{ template, want string }{
		"unknown function": {
			template: "{\n  \"rule\": {{ json .Rule }},\n  \"x\": {{ nosuch .Output }}\n}",
			want:     `webhook.template: line 3, column 11: function "nosuch" not defined`,
		},
		"unclosed action": {
			template: "{\"rule\": {{ json .Rule }\n}",
			want:     "webhook.template: line 1, column",
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(FormatWebhook, "http://127.0.0.1:1")
			cfg.Webhook.Template = tc.template
			err := cfg.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Format = "pagerduty"
	cfg.Alertmanager.ResolveTimeout = 0
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `format "pagerduty": must be one of [alertmanager falco webhook slack stdout]`)
	assert.Contains(t, err.Error(), "endpoint must be set")

	cfg = testConfig(FormatAlertmanager, "localhost:9093")
	cfg.Alertmanager.ResolveTimeout = 0
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `endpoint "localhost:9093" must be an http:// or https:// URL`)
	assert.Contains(t, err.Error(), "alertmanager.resolve_timeout must be positive")

	assert.NoError(t, testConfig(FormatSlack, "https://hooks.slack.com/services/x").Validate())
}
