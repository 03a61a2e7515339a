package securityrulesprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestResourceAttributesPerResource: rules read a resource's attributes once
// per resource of a batch; every record still sees its own resource's values
// (not the previous resource's), and a record's own attribute wins over its
// resource's.
func TestResourceAttributesPerResource(t *testing.T) {
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
- rule: Cat in prod
  events: [file.open]
  condition: k8s.namespace.name == "prod" && process.executable.name == "cat"
  severity: high
  output: "%{process.pid} %{file.path}"
`), 0o600))
	ld := plog.NewLogs()
	for _, p := range []struct {
		pid       int64
		namespace string
		exe       string
		records   []string // each record's own process.executable.name, "" for none
	}{
		{1, "prod", "cat", []string{"", "", "sh"}},
		{2, "dev", "cat", []string{"", ""}},
		{3, "prod", "sh", []string{"", "cat"}},
		{4, "prod", "cat", []string{""}},
	} {
		rl := ld.ResourceLogs().AppendEmpty()
		r := rl.Resource().Attributes()
		r.PutInt("process.pid", p.pid)
		r.PutStr("k8s.namespace.name", p.namespace)
		r.PutStr("process.executable.name", p.exe)
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i, exe := range p.records {
			lr := lrs.AppendEmpty()
			lr.SetEventName("file.open")
			lr.Attributes().PutStr("file.path", "/f"+string(rune('a'+i)))
			if exe != "" {
				lr.Attributes().PutStr("process.executable.name", exe)
			}
		}
	}
	sink := new(consumertest.LogsSink)
	p := newTestProcessor(t, componenttest.NewTelemetry(), testCfg(ModeAlerts, rulesFile), sink)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	_, alerts := records(sink)
	var got []string
	for _, a := range alerts {
		got = append(got, a.Body().Str())
	}
	assert.Equal(t, []string{"1 /fa", "1 /fb", "3 /fb", "4 /fa"}, got)
}
