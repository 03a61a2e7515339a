package k8sauditreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// redactLine decodes one audit log line with the given redaction setting and
// returns the request and response objects as raw Go values.
func redactLine(t *testing.T, redact bool, line string) (req, resp any) {
	t.Helper()
	d := testDecoder()
	d.redact = redact
	out := plog.NewLogRecordSlice()
	var stats decodeStats
	d.decodeLine([]byte(line), 0, out, &stats)
	require.Empty(t, stats.malformed)
	require.Equal(t, 1, out.Len())
	attrs := out.At(0).Attributes()
	if v, ok := attrs.Get(attrRequestObject); ok {
		req = v.AsRaw()
	}
	if v, ok := attrs.Get(attrResponseObject); ok {
		resp = v.AsRaw()
	}
	return req, resp
}

const lineHead = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"r","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z",`

func TestRedactSecretCreate(t *testing.T) {
	line := lineHead + `"verb":"create","objectRef":{"resource":"secrets","namespace":"default","name":"db"},
	"requestObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"aHVudGVyMg==\"}}","team":"payments"}},"data":{"password":"aHVudGVyMg==","user":"YWRtaW4="},"stringData":{"token":"plain"},"type":"Opaque"},
	"responseObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db"},"data":{"password":"aHVudGVyMg=="}}}`

	req, resp := redactLine(t, true, line)
	assert.Equal(t, map[string]any{
		"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
		"metadata": map[string]any{"name": "db", "annotations": map[string]any{
			"kubectl.kubernetes.io/last-applied-configuration": "<redacted>", "team": "payments"}},
		"data":       map[string]any{"password": "<redacted>", "user": "<redacted>"},
		"stringData": map[string]any{"token": "<redacted>"},
	}, req)
	assert.Equal(t, map[string]any{"kind": "Secret", "apiVersion": "v1", "metadata": map[string]any{"name": "db"},
		"data": map[string]any{"password": "<redacted>"}}, resp)

	req, _ = redactLine(t, false, line)
	assert.Equal(t, "aHVudGVyMg==", req.(map[string]any)["data"].(map[string]any)["password"], "redact.enabled: false keeps payloads")
}

func TestRedactSecretList(t *testing.T) {
	_, resp := redactLine(t, true, lineHead+`"verb":"list","objectRef":{"resource":"secrets","namespace":"kube-system"},
	"responseObject":{"kind":"SecretList","items":[{"metadata":{"name":"a"},"data":{"k":"djE="}},{"metadata":{"name":"b"},"data":{"k":"djI="}}]}}`)
	items := resp.(map[string]any)["items"].([]any)
	require.Len(t, items, 2)
	for _, it := range items {
		assert.Equal(t, map[string]any{"k": "<redacted>"}, it.(map[string]any)["data"])
	}
}

func TestRedactSecretPatches(t *testing.T) {
	req, _ := redactLine(t, true, lineHead+`"verb":"patch","objectRef":{"resource":"secrets","namespace":"default","name":"db"},
	"requestObject":{"data":{"password":"bmV3"}}}`)
	assert.Equal(t, map[string]any{"data": map[string]any{"password": "<redacted>"}}, req, "merge patch")

	req, _ = redactLine(t, true, lineHead+`"verb":"patch","objectRef":{"resource":"secrets","namespace":"default","name":"db"},
	"requestObject":[{"op":"replace","path":"/data/password","value":"bmV3"},{"op":"add","path":"/data","value":{"a":"Yg=="}}]}`)
	assert.Equal(t, []any{
		map[string]any{"op": "replace", "path": "/data/password", "value": "<redacted>"},
		map[string]any{"op": "add", "path": "/data", "value": "<redacted>"},
	}, req, "JSON patch")
}

func TestRedactTokens(t *testing.T) {
	req, resp := redactLine(t, true, lineHead+`"verb":"create","objectRef":{"resource":"serviceaccounts","subresource":"token","namespace":"default","name":"builder"},
	"requestObject":{"kind":"TokenRequest","spec":{"audiences":["api"]}},
	"responseObject":{"kind":"TokenRequest","spec":{"audiences":["api"]},"status":{"token":"eyJhbGciOi.payload.sig","expirationTimestamp":"2026-11-29T11:11:12Z"}}}`)
	assert.Equal(t, map[string]any{"kind": "TokenRequest", "spec": map[string]any{"audiences": []any{"api"}}}, req)
	assert.Equal(t, "<redacted>", resp.(map[string]any)["status"].(map[string]any)["token"])
	assert.Equal(t, "2026-11-29T11:11:12Z", resp.(map[string]any)["status"].(map[string]any)["expirationTimestamp"])

	req, _ = redactLine(t, true, lineHead+`"verb":"create","objectRef":{"resource":"tokenreviews","apiGroup":"authentication.k8s.io"},
	"requestObject":{"kind":"TokenReview","spec":{"token":"eyJhbGciOi.payload.sig"}}}`)
	assert.Equal(t, map[string]any{"kind": "TokenReview", "spec": map[string]any{"token": "<redacted>"}}, req)
}

func TestRedactLeavesOtherObjectsAlone(t *testing.T) {
	line := lineHead + `"verb":"create","objectRef":{"resource":"configmaps","namespace":"default","name":"cfg"},
	"requestObject":{"kind":"ConfigMap","data":{"password":"not-redacted-rules-need-it"}}}`
	req, _ := redactLine(t, true, line)
	assert.Equal(t, map[string]any{"kind": "ConfigMap", "data": map[string]any{"password": "not-redacted-rules-need-it"}}, req)
}
