package k8sauditreceiver

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// TestAuditPackOnCapturedEvents runs the k8s_audit pack on the records this
// receiver makes of audit events a real kube-apiserver wrote (testdata, the
// golden capture): the rules read what the apiserver reports, not hand-made
// attributes. Among them an exec into a pod that was never scheduled (400),
// which must alert as a failed attempt, not as a session.
func TestAuditPackOnCapturedEvents(t *testing.T) {
	in, err := os.Open(filepath.Join("testdata", "apiserver_audit.jsonl"))
	require.NoError(t, err)
	defer in.Close()
	records := plog.NewLogRecordSlice()
	d := testDecoder()
	var stats decodeStats
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		d.decodeLine(sc.Bytes(), i, records, &stats)
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(goldenActions), records.Len())

	data, ok := rulepacks.Pack("k8s_audit")
	require.True(t, ok)
	set, err := rules.Load([]rules.Source{{Name: "k8s_audit", Data: data}}, rules.Options{})
	require.NoError(t, err)
	engine := rules.NewEngine(set, rules.StateConfig{})
	alerts := map[string][]string{}
	for i, action := range goldenActions {
		ev := rules.EventFromRecord(records.At(i), pcommon.NewMap())
		for _, m := range engine.Evaluate(&ev, nil) {
			alerts[action] = append(alerts[action], m.Rule.Name)
		}
	}

	want := map[string][]string{
		"namespace":             {"Namespace created"},
		"privileged-pod":        {"Privileged pod created"},
		"secret-create":         {"Secret created, modified or deleted by a non-system identity"},
		"secret-read":           {"Secret read by a non-system identity"},
		"secret-read-denied":    {"Secret read denied"},
		"cluster-admin-binding": {"Binding to a privileged ClusterRole", "RoleBinding or ClusterRoleBinding written or deleted"},
		"pods-exec":             {"Exec, attach or port-forward into a pod denied or failed"},
	}
	for action, names := range want {
		for _, name := range names {
			assert.Contains(t, alerts[action], name, "%s: alerts %v", action, alerts[action])
		}
	}
	assert.NotContains(t, alerts["pods-exec"], "Exec or attach into a pod", "the exec never opened a session")
	assert.NotContains(t, alerts["secret-read"], "Secret created, modified or deleted by a non-system identity")
}
