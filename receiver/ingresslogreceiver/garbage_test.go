package ingresslogreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Whatever a file holds, every line comes out once: the ones that do not fit
// the format as warnings that carry the line (valid UTF-8, so that OTLP can
// send it) and why, the good ones parsed, and only the good ones counted in
// the RED metrics.
func TestGarbageLines(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	s := startReceiver(t, logPath, func(c *Config) { c.Container = containerNone })
	garbage := []string{
		"\x00\x01\x02\xff\xfe binary",
		`10.0.0.1 - - [29/Nov/2026:10:11:12 +0000] "GET / HTTP/1.1" 200`, // cut short
		`10.0.0.1 - - [29/Nov/2026:10:11:12 +0000] "GET / HTTP/1.1" OK 612 "-" "-" 1 0.1 [a] [] - - - - x`,
		`{"status": 200, "remote_addr": "10.0.0.1"}`,
		strings.Repeat("A", 64<<10),
		"caf\xc3\x28 invalid utf-8",
	}
	filetest.AppendLines(t, logPath, garbage...)
	filetest.AppendLines(t, logPath, accessLine(7, "/after-garbage", 200))
	got := waitRecords(t, s.logs, len(garbage)+1)

	for i, r := range got[:len(garbage)] {
		a := r.Attributes()
		assert.Equal(t, plog.SeverityNumberWarn, r.SeverityNumber(), "line %d", i)
		assert.NotEqual(t, "<absent>", str(a, "k8ssec.parse.error"), "line %d", i)
		orig := str(a, "log.record.original")
		assert.True(t, utf8.ValidString(orig), "line %d: %q", i, orig)
		if utf8.ValidString(garbage[i]) {
			assert.Equal(t, garbage[i], orig, "line %d", i)
		} else {
			// The file consumer's decoder replaces each invalid byte.
			assert.Contains(t, orig, "\uFFFD", "line %d", i)
		}
		assert.Equal(t, "<absent>", str(a, "http.response.status_code"), "line %d", i)
	}
	good := got[len(garbage)]
	assert.Equal(t, "/after-garbage", str(good.Attributes(), "url.path"))
	assert.Equal(t, "<absent>", str(good.Attributes(), "k8ssec.parse.error"))

	require.Eventually(t, func() bool {
		byClass, _ := redTotals(s.metrics)
		return byClass["2xx"] == 1
	}, 5*time.Second, 10*time.Millisecond)
	byClass, timed := redTotals(s.metrics)
	assert.Equal(t, map[string]int64{"2xx": 1}, byClass, "garbage is not a request")
	assert.Equal(t, uint64(1), timed)
}
