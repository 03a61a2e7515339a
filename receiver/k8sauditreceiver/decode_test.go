package k8sauditreceiver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

var testTime = time.Date(2026, 11, 29, 10, 11, 12, 345678000, time.UTC)

// auditEvent is a well-formed ResponseComplete event as the apiserver writes it.
func auditEvent(id string) auditv1.Event {
	return auditv1.Event{
		TypeMeta:   metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:      auditv1.LevelRequestResponse,
		AuditID:    types.UID(id),
		Stage:      auditv1.StageResponseComplete,
		RequestURI: "/api/v1/namespaces/default/pods?fieldManager=kubectl-client-side-apply",
		Verb:       "create",
		User: authnv1.UserInfo{Username: "alice", UID: "u-1", Groups: []string{"dev", "system:authenticated"},
			Extra: map[string]authnv1.ExtraValue{"scopes": {"a", "b"}}},
		ImpersonatedUser: &authnv1.UserInfo{Username: "mallory", Groups: []string{"system:masters"}},
		SourceIPs:        []string{"10.1.2.3", "192.168.0.1"},
		UserAgent:        "kubectl/v1.36.3 (linux/amd64)",
		ObjectRef: &auditv1.ObjectReference{Resource: "pods", Namespace: "default", Name: "web",
			UID: "pod-uid", APIVersion: "v1", ResourceVersion: "42"},
		ResponseStatus:           &metav1.Status{Code: 201, Status: "Success"},
		RequestObject:            &runtime.Unknown{Raw: []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web"},"spec":{"hostPID":true,"containers":[{"name":"c","image":"nginx:1.27","securityContext":{"privileged":true}}]}}`)},
		RequestReceivedTimestamp: metav1.NewMicroTime(testTime.Add(-3 * time.Millisecond)),
		StageTimestamp:           metav1.NewMicroTime(testTime),
		Annotations: map[string]string{
			"authorization.k8s.io/decision":             "allow",
			"authorization.k8s.io/reason":               `RBAC: allowed by ClusterRoleBinding "dev"`,
			"pod-security.kubernetes.io/enforce-policy": "privileged:latest",
		},
	}
}

func eventList(t testing.TB, events ...auditv1.Event) []byte {
	t.Helper()
	b, err := json.Marshal(auditv1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "audit.k8s.io/v1"}, Items: events})
	require.NoError(t, err)
	return b
}

func testDecoder(stages ...string) *decoder {
	if len(stages) == 0 {
		stages = []string{"ResponseComplete", "Panic"}
	}
	keep := map[string]bool{}
	for _, s := range stages {
		keep[s] = true
	}
	return &decoder{mapper: mapper{keepStage: keep, redact: true}, maxEventSize: 1 << 20}
}

func decodeBody(t *testing.T, d *decoder, body []byte) (plog.LogRecordSlice, decodeStats, error) {
	t.Helper()
	out := plog.NewLogRecordSlice()
	var stats decodeStats
	err := d.decodeBody(body, out, &stats)
	return out, stats, err
}

func TestDecodeEventListMapsEveryField(t *testing.T) {
	out, stats, err := decodeBody(t, testDecoder(), eventList(t, auditEvent("id-1")))
	require.NoError(t, err)
	require.Equal(t, 1, out.Len())
	assert.Equal(t, decodeStats{received: 1}, stats)

	lr := out.At(0)
	assert.Equal(t, "k8s.audit", lr.EventName())
	assert.Equal(t, testTime, lr.Timestamp().AsTime())
	assert.Equal(t, "alice create pods default/web -> 201", lr.Body().Str())
	got := lr.Attributes().AsRaw()
	want := map[string]any{
		"k8s.audit.id":                          "id-1",
		"k8s.audit.stage":                       "ResponseComplete",
		"k8s.audit.level":                       "RequestResponse",
		"k8s.audit.verb":                        "create",
		"k8s.audit.request_uri":                 "/api/v1/namespaces/default/pods?fieldManager=kubectl-client-side-apply",
		"user_agent.original":                   "kubectl/v1.36.3 (linux/amd64)",
		"k8s.audit.request_received_time":       "2026-11-29T10:11:12.342678Z",
		"user.name":                             "alice",
		"user.id":                               "u-1",
		"k8s.audit.user.groups":                 []any{"dev", "system:authenticated"},
		"k8s.audit.user.extra":                  map[string]any{"scopes": []any{"a", "b"}},
		"k8s.audit.impersonated_user.name":      "mallory",
		"k8s.audit.impersonated_user.groups":    []any{"system:masters"},
		"k8s.audit.source_ips":                  []any{"10.1.2.3", "192.168.0.1"},
		"client.address":                        "10.1.2.3",
		"k8s.audit.object.resource":             "pods",
		"k8s.namespace.name":                    "default",
		"k8s.audit.object.name":                 "web",
		"k8s.pod.name":                          "web",
		"k8s.audit.object.uid":                  "pod-uid",
		"k8s.audit.object.api_version":          "v1",
		"k8s.audit.object.resource_version":     "42",
		"http.response.status_code":             int64(201),
		"k8s.audit.response.status":             "Success",
		"k8s.audit.authorization.decision":      "allow",
		"k8s.audit.authorization.reason":        `RBAC: allowed by ClusterRoleBinding "dev"`,
		"k8s.audit.pod_security.enforce_policy": "privileged:latest",
		"k8s.audit.annotations": map[string]any{
			"authorization.k8s.io/decision":             "allow",
			"authorization.k8s.io/reason":               `RBAC: allowed by ClusterRoleBinding "dev"`,
			"pod-security.kubernetes.io/enforce-policy": "privileged:latest",
		},
		"k8s.audit.request_object": map[string]any{
			"kind": "Pod", "apiVersion": "v1", "metadata": map[string]any{"name": "web"},
			"spec": map[string]any{"hostPID": true, "containers": []any{
				map[string]any{"name": "c", "image": "nginx:1.27", "securityContext": map[string]any{"privileged": true}},
			}},
		},
	}
	assert.Equal(t, want, got)
}

func TestDecodeSingleEvent(t *testing.T) {
	b, err := json.Marshal(auditEvent("single"))
	require.NoError(t, err)
	out, stats, err := decodeBody(t, testDecoder(), b)
	require.NoError(t, err)
	require.Equal(t, 1, out.Len())
	assert.Equal(t, 1, stats.received)
	id, _ := out.At(0).Attributes().Get("k8s.audit.id")
	assert.Equal(t, "single", id.Str())
}

func TestDecodeFiltersStages(t *testing.T) {
	received := auditEvent("rr")
	received.Stage = auditv1.StageRequestReceived
	panicked := auditEvent("panic")
	panicked.Stage = auditv1.StagePanic
	body := eventList(t, received, auditEvent("rc"), panicked)

	out, stats, err := decodeBody(t, testDecoder(), body)
	require.NoError(t, err)
	assert.Equal(t, decodeStats{received: 3, filtered: 1}, stats)
	require.Equal(t, 2, out.Len())
	assert.Equal(t, "rc", idOf(out.At(0)))
	assert.Equal(t, "panic", idOf(out.At(1)))

	out, stats, err = decodeBody(t, testDecoder("RequestReceived"), body)
	require.NoError(t, err)
	assert.Equal(t, decodeStats{received: 3, filtered: 2}, stats)
	require.Equal(t, 1, out.Len())
	assert.Equal(t, "rr", idOf(out.At(0)))
}

func idOf(lr plog.LogRecord) string {
	v, _ := lr.Attributes().Get("k8s.audit.id")
	return v.Str()
}

func TestDecodeRefusesBadBodies(t *testing.T) {
	good := eventList(t, auditEvent("a"))
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"not json":        {`this is not json`, "malformed audit payload: invalid JSON"},
		"truncated":       {string(good[:len(good)-10]), "malformed audit payload: invalid JSON"},
		"empty":           {``, "malformed audit payload: invalid JSON"},
		"old apiVersion":  {`{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}`, `apiVersion "audit.k8s.io/v1beta1", want "audit.k8s.io/v1"`},
		"no apiVersion":   {`{"kind":"EventList","items":[]}`, `apiVersion "", want "audit.k8s.io/v1"`},
		"wrong kind":      {`{"kind":"Pod","apiVersion":"audit.k8s.io/v1"}`, `kind "Pod", want EventList or Event`},
		"items not array": {`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{"a":1}}`, "items is a object, want an array"},
		"top-level array": {`[1,2]`, `apiVersion ""`},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := decodeBody(t, testDecoder(), []byte(tc.body))
			require.ErrorIs(t, err, errBadBody)
			assert.ErrorContains(t, err, tc.want)
			assert.Equal(t, 0, out.Len(), "nothing of a refused body is kept")
		})
	}
}

func TestDecodeEmptyList(t *testing.T) {
	for _, body := range []string{
		`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`,
		`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}`,
		`{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}`,
	} {
		out, stats, err := decodeBody(t, testDecoder(), []byte(body))
		require.NoError(t, err, body)
		assert.Equal(t, 0, out.Len())
		assert.Equal(t, decodeStats{}, stats)
	}
}

// One unusable event inside a list is reported with its index and reason; the
// good events around it still come through, whole.
func TestDecodeOneBadEventAmongGood(t *testing.T) {
	good1, _ := json.Marshal(auditEvent("good-1"))
	good2, _ := json.Marshal(auditEvent("good-2"))
	bad := []string{
		`42`,
		`{"stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z"}`,
		`{"auditID":"b2","stage":"Finished","stageTimestamp":"2026-11-29T10:11:12Z"}`,
		`{"auditID":"b3","stage":"ResponseComplete","stageTimestamp":"yesterday"}`,
		`{"auditID":"b4","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z","user":"alice"}`,
		`{"auditID":"b5","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z","user":{"groups":["a",7]}}`,
		`{"auditID":"b6","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z","responseStatus":{"code":"201"}}`,
		`{"auditID":"b7","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z","requestObject":"secret"}`,
		`{"auditID":"b8","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z","annotations":{"a":1}}`,
		`{"auditID":"b9","stage":"ResponseComplete"}`,
		`{"auditID":7,"stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z"}`,
	}
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + string(good1)
	for _, b := range bad {
		body += "," + b
	}
	body += "," + string(good2) + "]}"

	out, stats, err := decodeBody(t, testDecoder(), []byte(body))
	require.NoError(t, err)
	require.Equal(t, 2, out.Len())
	assert.Equal(t, "good-1", idOf(out.At(0)))
	assert.Equal(t, "good-2", idOf(out.At(1)))
	assert.Equal(t, out.At(0).Attributes().Len(), out.At(1).Attributes().Len(), "the good events are mapped whole")
	assert.Equal(t, 2, stats.received)
	assert.Equal(t, []eventError{
		{Index: 1, Reason: "event is a number, want an object"},
		{Index: 2, Reason: "missing auditID"},
		{Index: 3, AuditID: "b2", Reason: `stage "Finished" is not an audit stage`},
		{Index: 4, AuditID: "b3", Reason: `stageTimestamp "yesterday" is not an RFC 3339 time`},
		{Index: 5, AuditID: "b4", Reason: "user: want an object, got string"},
		{Index: 6, AuditID: "b5", Reason: "user.groups[1]: want a string, got number"},
		{Index: 7, AuditID: "b6", Reason: "responseStatus.code: value doesn't contain number; it contains string"},
		{Index: 8, AuditID: "b7", Reason: "requestObject: want an object or array, got string"},
		{Index: 9, AuditID: "b8", Reason: "annotations.a: want a string, got number"},
		{Index: 10, AuditID: "b9", Reason: "missing stageTimestamp"},
		{Index: 11, Reason: "auditID: want a string, got number"},
	}, stats.malformed)
	assert.Equal(t, "event 4 (auditID b3): stageTimestamp \"yesterday\" is not an RFC 3339 time", stats.malformed[3].Error())
}

func TestDecodeMaxEventSize(t *testing.T) {
	small := auditEvent("small")
	big := auditEvent("big")
	big.RequestObject = &runtime.Unknown{Raw: []byte(fmt.Sprintf(`{"kind":"ConfigMap","data":{"blob":%q}}`, strings.Repeat("x", 4096)))}
	d := testDecoder()
	d.maxEventSize = 3000
	out, stats, err := decodeBody(t, d, eventList(t, small, big))
	require.NoError(t, err)
	require.Equal(t, 1, out.Len())
	assert.Equal(t, "small", idOf(out.At(0)))
	require.Len(t, stats.malformed, 1)
	assert.Equal(t, 1, stats.malformed[0].Index)
	assert.Regexp(t, `^event of \d+ bytes is over max_event_size 3000$`, stats.malformed[0].Reason)
}

func TestDecodeLineKeepsNumbersAndNulls(t *testing.T) {
	line := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"n1","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12.000001Z","verb":"patch","user":null,"objectRef":{"resource":"deployments","apiGroup":"apps","namespace":"prod","name":"api"},"requestObject":[{"op":"replace","path":"/spec/replicas","value":3.5},{"op":"remove","path":"/x","value":null}]}`
	out := plog.NewLogRecordSlice()
	var stats decodeStats
	testDecoder().decodeLine([]byte(line), 7, out, &stats)
	require.Empty(t, stats.malformed)
	require.Equal(t, 1, out.Len())
	attrs := out.At(0).Attributes()
	patch, ok := attrs.Get("k8s.audit.request_object")
	require.True(t, ok)
	require.Equal(t, pcommon.ValueTypeSlice, patch.Type())
	assert.Equal(t, []any{
		map[string]any{"op": "replace", "path": "/spec/replicas", "value": 3.5},
		map[string]any{"op": "remove", "path": "/x", "value": nil},
	}, patch.Slice().AsRaw())
	_, hasPod := attrs.Get("k8s.pod.name")
	assert.False(t, hasPod, "only pods get k8s.pod.name")
	assert.Equal(t, "(unknown user) patch deployments prod/api", out.At(0).Body().Str())
}
