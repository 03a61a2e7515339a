package k8sauditreceiver

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

// FuzzDecodeBody feeds arbitrary webhook bodies to the decoder: it must never
// panic, and every event it counts is either a record, filtered or malformed.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}`))
	f.Add([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","stageTimestamp":"2026-11-29T10:11:12Z"}`))
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[1,{"auditID":"x"},null]}`))
	if in, err := os.Open(filepath.Join("testdata", "apiserver_audit.jsonl")); err == nil {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			f.Add(line)
			f.Add(append(append([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`), line...), ']', '}'))
		}
		in.Close()
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := testDecoder("RequestReceived", "ResponseComplete")
		d.maxEventSize = 4096
		out := plog.NewLogRecordSlice()
		var stats decodeStats
		err := d.decodeBody(body, out, &stats)
		if err != nil {
			return
		}
		if kept := stats.received - stats.filtered; kept != out.Len() {
			t.Fatalf("%d records, but %d received and %d filtered", out.Len(), stats.received, stats.filtered)
		}
		for i := 0; i < out.Len(); i++ {
			if idOf(out.At(i)) == "" {
				t.Fatalf("record %d has no audit ID", i)
			}
		}
	})
}
