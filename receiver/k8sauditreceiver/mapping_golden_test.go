package k8sauditreceiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestGoldenMapping maps audit events that a real kube-apiserver wrote (captured
// by TestApiserverAuditExactlyOnce with -update-golden) and compares the records
// with the reviewed output in testdata. A change of mapping shows as a diff here.
func TestGoldenMapping(t *testing.T) {
	in, err := os.Open(filepath.Join("testdata", "apiserver_audit.jsonl"))
	require.NoError(t, err)
	defer in.Close()

	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	d := testDecoder()
	var stats decodeStats
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for i := 0; sc.Scan(); i++ {
		d.decodeLine(sc.Bytes(), i, records, &stats)
	}
	require.NoError(t, sc.Err())
	require.Empty(t, stats.malformed)
	require.Equal(t, len(goldenActions), records.Len(), "one record per captured event")

	raw, err := (&plog.JSONMarshaler{}).MarshalLogs(logs)
	require.NoError(t, err)
	var got bytes.Buffer
	require.NoError(t, json.Indent(&got, raw, "", "  "))
	got.WriteByte('\n')

	golden := filepath.Join("testdata", "apiserver_audit.golden.json")
	if *updateGolden {
		require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), got.String())
}
