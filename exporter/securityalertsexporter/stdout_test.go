package securityalertsexporter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/exporter/securityalertsexporter/internal/metadatatest"
)

// stdoutTo points os.Stdout at a file while the test creates its exporter.
func stdoutTo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdout")
	f, err := os.Create(path)
	require.NoError(t, err)
	saved := os.Stdout
	os.Stdout = f
	t.Cleanup(func() { os.Stdout = saved; f.Close() })
	return path
}

// Format stdout: each alert is one line of Falco JSON on standard output, what
// `kubectl logs` shows of a gateway with no alert destination set up; the
// events beside the alerts are passed over.
func TestStdoutFormat(t *testing.T) {
	out := stdoutTo(t)
	exp, tt := newTestExporter(t, testConfig(FormatStdout, ""))

	ld := plog.NewLogs()
	appendAlert(ld, execAlert("audit-1"))
	ev := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	ev.SetEventName("k8s.audit")
	appendAlert(ld, execAlert("audit-2"))
	// Consumers run concurrently in a queued exporter: lines must not interleave.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, exp.ConsumeLogs(context.Background(), ld)) })
	}
	wg.Wait()

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	require.Len(t, lines, 16)
	ids := map[any]int{}
	for _, line := range lines {
		a := decodeFalcoStrict(t, line)
		assert.Equal(t, "Exec or attach into a pod", a.Rule)
		assert.Equal(t, "Warning", a.Priority)
		assert.Equal(t, "web-0", a.OutputFields["k8s.pod.name"])
		assert.Equal(t, "shop", a.OutputFields["k8s.ns.name"])
		ids[a.OutputFields["ka.auditid"]]++
	}
	assert.Equal(t, map[any]int{"audit-1": 8, "audit-2": 8}, ids)
	metadatatest.AssertEqualExporterSecurityAlertsSent(t, tt, []metricdata.DataPoint[int64]{sum(16)}, ignoreTimes...)
	metadatatest.AssertEqualExporterSecurityAlertsPassedOver(t, tt, []metricdata.DataPoint[int64]{sum(8)}, ignoreTimes...)
}

func TestStdoutFormatTakesNoEndpoint(t *testing.T) {
	cfg := testConfig(FormatStdout, "")
	require.NoError(t, cfg.Validate())
	cfg.Endpoint = "http://127.0.0.1:9093"
	assert.ErrorContains(t, cfg.Validate(), "format stdout writes to standard output and takes no endpoint")
}
