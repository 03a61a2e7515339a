package k8sauditreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/benchtest"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator"
	jsonparser "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/parser/json"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// realisticEvents is a mix like a busy cluster's audit stream under a
// Falco-style policy: 60% Metadata-level reads by controllers, 25% Request-level
// lease renewals, 15% RequestResponse pod creates with full objects.
func realisticEvents(n int) []auditv1.Event {
	events := make([]auditv1.Event, n)
	for i := range events {
		e := auditEvent(fmt.Sprintf("7f3c1a52-%04x-4b7e-9d1a-%012x", i%65536, i))
		switch r := i % 20; {
		case r < 12:
			e.Level = auditv1.LevelMetadata
			e.Verb = []string{"get", "list", "watch"}[r%3]
			e.User = authnv1.UserInfo{Username: "system:serviceaccount:kube-system:endpointslice-controller",
				UID: "3c6f0e8e-2f0b-4a53-8f0e-0d1b2c3d4e5f", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}}
			e.ImpersonatedUser = nil
			e.ObjectRef = &auditv1.ObjectReference{Resource: "endpointslices", Namespace: "default", APIGroup: "discovery.k8s.io", APIVersion: "v1"}
			e.RequestURI = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?limit=500&resourceVersion=0"
			e.ResponseStatus = &metav1.Status{Code: 200}
			e.RequestObject, e.ResponseObject = nil, nil
			e.Annotations = map[string]string{"authorization.k8s.io/decision": "allow",
				"authorization.k8s.io/reason": `RBAC: allowed by ClusterRoleBinding "system:controller:endpointslice-controller"`}
		case r < 17:
			e.Level = auditv1.LevelRequest
			e.Verb = "update"
			e.User = authnv1.UserInfo{Username: "system:node:worker-3", Groups: []string{"system:nodes", "system:authenticated"}}
			e.ImpersonatedUser = nil
			e.ObjectRef = &auditv1.ObjectReference{Resource: "leases", Namespace: "kube-node-lease", Name: "worker-3",
				APIGroup: "coordination.k8s.io", APIVersion: "v1"}
			e.RequestURI = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/worker-3?timeout=10s"
			e.ResponseStatus = &metav1.Status{Code: 200}
			e.RequestObject = &runtime.Unknown{Raw: []byte(`{"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"worker-3","namespace":"kube-node-lease","uid":"0d5b1c8e-93f1-4c55-a7d2-1b1f0e7d2c11","resourceVersion":"918273","ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"worker-3","uid":"7a2b3c4d-0000-4e5f-8a9b-0c1d2e3f4a5b"}]},"spec":{"holderIdentity":"worker-3","leaseDurationSeconds":40,"renewTime":"2026-11-29T10:11:12.345678Z"}}`)}
			e.ResponseObject = nil
		default:
			e.ResponseObject = &runtime.Unknown{Raw: []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d9c8b6f5-x2x4z","generateName":"web-7d9c8b6f5-","namespace":"default","uid":"b1e2c3d4-5f60-4718-9a0b-1c2d3e4f5a6b","resourceVersion":"918280","creationTimestamp":"2026-11-29T10:11:12Z","labels":{"app":"web","pod-template-hash":"7d9c8b6f5"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d9c8b6f5","uid":"aa11bb22-cc33-4d44-8e55-ff6677889900","controller":true,"blockOwnerDeletion":true}]},"spec":{"volumes":[{"name":"kube-api-access-abcde","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}],"defaultMode":420}}],"containers":[{"name":"web","image":"registry.example.com/web:2.4.1","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"volumeMounts":[{"name":"kube-api-access-abcde","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"imagePullPolicy":"IfNotPresent","securityContext":{"runAsNonRoot":true,"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}],"restartPolicy":"Always","serviceAccountName":"web","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}},"status":{"phase":"Pending","qosClass":"Burstable"}}`)}
		}
		events[i] = e
	}
	return events
}

// eventList400 is one webhook batch at the apiserver's default
// --audit-webhook-batch-max-size.
func eventList400(b *testing.B, events []auditv1.Event) []byte {
	body, err := json.Marshal(auditv1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "audit.k8s.io/v1"}, Items: events})
	require.NoError(b, err)
	return body
}

func events400(b *testing.B) []byte { return eventList400(b, realisticEvents(400)) }

// metadataEvents400 keeps only the Metadata-level reads of the mix: the bulk
// of a real cluster's audit volume, with no request or response objects.
func metadataEvents400(b *testing.B) []byte {
	var events []auditv1.Event
	for _, e := range realisticEvents(700) {
		if e.Level == auditv1.LevelMetadata && len(events) < 400 {
			events = append(events, e)
		}
	}
	return eventList400(b, events)
}

// webhookBodies are the batches both webhook benchmarks decode.
var webhookBodies = []struct {
	name string
	body func(*testing.B) []byte
}{{"mixed", events400}, {"metadata-only", metadataEvents400}}

// BenchmarkWebhookDecode is the webhook path minus the network: one posted
// batch of 400 events decoded and mapped to pdata.
func BenchmarkWebhookDecode(b *testing.B) {
	for _, bc := range webhookBodies {
		b.Run(bc.name, func(b *testing.B) {
			body := bc.body(b)
			d := testDecoder()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				out := plog.NewLogRecordSlice()
				var stats decodeStats
				if err := d.decodeBody(body, out, &stats); err != nil || out.Len() != 400 {
					b.Fatalf("decoded %d: %v", out.Len(), err)
				}
			}
			benchtest.PerSecond(b, 400, "events/s")
		})
	}
}

// BenchmarkWebhookDecodeBaselineK8sTypes is what the obvious Go code does:
// encoding/json into the apiserver's own audit types, before any mapping.
func BenchmarkWebhookDecodeBaselineK8sTypes(b *testing.B) {
	for _, bc := range webhookBodies {
		b.Run(bc.name, func(b *testing.B) {
			body := bc.body(b)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var list auditv1.EventList
				if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 400 {
					b.Fatal(err)
				}
			}
			benchtest.PerSecond(b, 400, "events/s")
		})
	}
}

const fileBenchEvents = 20000

func writeAuditFile(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "audit.log")
	f, err := os.Create(path)
	require.NoError(b, err)
	for i, e := range realisticEvents(fileBenchEvents) {
		line, err := json.Marshal(e)
		require.NoError(b, err)
		_, err = f.Write(append(line, '\n'))
		require.NoError(b, err, i)
	}
	require.NoError(b, f.Close())
	return path
}

// benchFile measures a receiver reading a whole audit log from the beginning:
// from start until every line reached the consumer.
func benchFile(b *testing.B, create func(path string, next consumer.Logs) (receiver.Logs, error)) {
	benchtest.ReadFile(b, writeAuditFile(b), fileBenchEvents, "events/s", create)
}

// BenchmarkFile is the k8s_audit file path: tail, decode and map.
func BenchmarkFile(b *testing.B) {
	benchFile(b, func(path string, next consumer.Logs) (receiver.Logs, error) {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.Webhook.Enabled = false
		files := cfg.Files.GetOrInsertDefault()
		files.Include = []string{path}
		files.StartAt = "beginning"
		files.PollInterval = time.Millisecond
		cfg.Files = configoptional.Some(*files)
		return NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(NewFactory().Type()), cfg, next)
	})
}

// BenchmarkFileBaselineFilelogJSON is what a user would configure without this
// receiver: contrib's file_log with a json_parser, on the same file. It only
// parses; it maps nothing to semantic-convention names.
func BenchmarkFileBaselineFilelogJSON(b *testing.B) {
	benchFile(b, func(path string, next consumer.Logs) (receiver.Logs, error) {
		return benchtest.Filelog(path, next, operator.Config{Builder: jsonparser.NewConfig()})
	})
}
