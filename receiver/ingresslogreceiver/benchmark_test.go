package ingresslogreceiver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/benchtest"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/parser/regex"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	al "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
)

// realisticLines is an ingress-nginx controller's access log on a busy shop:
// API reads with queries, static assets, order posts, probes and some
// errors, browsers and tools, a few retried upstreams (about 250 bytes a line).
func realisticLines(n int) [][]byte {
	targets := []string{
		"/api/v1/products?category=shoes&page=%d&sort=price", "/static/js/app.%d.js", "/", "/api/v1/cart/%d",
		"/images/p/%d/thumb.webp", "/api/v1/orders", "/healthz", "/search?q=running+shoes+size+%d",
	}
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "kube-probe/1.31", "curl/8.5.0",
	}
	statuses := []int{200, 200, 200, 200, 200, 200, 200, 304, 200, 200, 404, 200, 200, 201, 200, 200, 401, 200, 200, 502}
	lines := make([][]byte, n)
	for i := range lines {
		method, target := "GET", fmt.Sprintf(targets[i%len(targets)], i%97)
		if i%len(targets) == 5 {
			method = "POST"
		}
		referer := "-"
		if i%3 == 0 {
			referer = "https://shop.example.com/products/shoes"
		}
		status := statuses[i%len(statuses)]
		upstream := fmt.Sprintf("10.244.%d.%d:8080 %d 0.%03d %d", i%4, 2+i%50, 612+i%4000, 1+i%300, status)
		if i%50 == 49 { // a retried upstream
			upstream = fmt.Sprintf("10.244.1.7:8080, 10.244.2.%d:8080 0, %d 0.001, 0.%03d 502, %d", 2+i%50, 612+i%4000, 1+i%300, status)
		}
		lines[i] = fmt.Appendf(nil, `10.%d.%d.%d - - [29/Nov/2026:10:%02d:%02d +0000] "%s %s HTTP/1.1" %d %d "%s" "%s" %d 0.%03d [shop-web-8080] [] %s %032x`,
			i%200, (i/200)%250, 1+i%250, (i/60)%60, i%60, method, target, status, 612+i%4000, referer, agents[i%len(agents)],
			300+i%600, 1+i%300, upstream, uint64(i)*0x9e3779b97f4a7c15)
	}
	return lines
}

func totalBytes(lines [][]byte) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	return n
}

// ingressNginxRegex is what a user of contrib's regex_parser writes for the
// default format: one named group per variable.
const ingressNginxRegex = `^(?P<remote_addr>[^ ]*) - (?P<remote_user>[^ ]*) \[(?P<time_local>[^\]]*)\] "(?P<request>[^"]*)" ` +
	`(?P<status>\d+) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)" ` +
	`(?P<request_length>\d+) (?P<request_time>[^ ]+) \[(?P<proxy_upstream_name>[^\]]*)\] ` +
	`\[(?P<proxy_alternative_upstream_name>[^\]]*)\] (?P<upstream_addr>.*) (?P<upstream_response_length>[^ ]*) ` +
	`(?P<upstream_response_time>[^ ]*) (?P<upstream_status>[^ ]*) (?P<req_id>[^ ]*)$`

// BenchmarkParse is the parser alone: the ingress-nginx default format
// compiled to literals and fields, one line at a time.
func BenchmarkParse(b *testing.B) {
	lines := realisticLines(10000)
	p, err := al.New(al.FormatIngressNginx, "")
	require.NoError(b, err)
	var r al.Record
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if err := p.Parse(l, &r); err != nil {
				b.Fatal(err, string(l))
			}
		}
	}
	benchtest.PerSecond(b, len(lines), "lines/s")
}

// BenchmarkParseBaselineRegexp is Go's regexp with the regex_parser's
// expression on the same lines: what the regex does before any stanza entry.
func BenchmarkParseBaselineRegexp(b *testing.B) {
	lines := realisticLines(10000)
	re := regexp.MustCompile(ingressNginxRegex)
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if re.FindSubmatchIndex(l) == nil {
				b.Fatal(string(l))
			}
		}
	}
	benchtest.PerSecond(b, len(lines), "lines/s")
}

// BenchmarkDecode is a batch from the file consumer to pdata with no file:
// framing detection, parsing, semantic-convention mapping, log records.
func BenchmarkDecode(b *testing.B) {
	lines := realisticLines(10000)
	d := &decoder{unwrap: unwrapper{mode: containerAuto}}
	d.parser, _ = al.New(al.FormatIngressNginx, "")
	const batch = 100 // the file consumer's default max_batches of lines
	b.SetBytes(totalBytes(lines))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(lines); i += batch {
			var stats lineStats
			entries := d.decode(lines[i:i+batch], &stats)
			lrs := plog.NewLogRecordSlice()
			appendRecords(entries, d.strings(), lrs, pcommon.Timestamp(1))
			if lrs.Len() != batch || stats.malformed != 0 {
				b.Fatalf("%d records, %d malformed", lrs.Len(), stats.malformed)
			}
		}
	}
	benchtest.PerSecond(b, len(lines), "lines/s")
}

const fileBenchLines = 100000

func writeAccessLog(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "access.log")
	f, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriter(f)
	for _, l := range realisticLines(fileBenchLines) {
		_, _ = w.Write(l)
		_ = w.WriteByte('\n')
	}
	require.NoError(b, w.Flush())
	require.NoError(b, f.Close())
	return path
}

// benchFile measures a receiver reading a whole access log from the
// beginning: from start until every line reached the consumer.
func benchFile(b *testing.B, create func(path string, next consumer.Logs) (receiver.Logs, error)) {
	benchtest.ReadFile(b, writeAccessLog(b), fileBenchLines, "lines/s", create)
}

// BenchmarkFile is the ingress_log file path: tail, parse, map to pdata.
func BenchmarkFile(b *testing.B) {
	benchFile(b, func(path string, next consumer.Logs) (receiver.Logs, error) {
		cfg := NewFactory().CreateDefaultConfig().(*Config)
		cfg.Include = []string{path}
		cfg.StartAt = "beginning"
		cfg.PollInterval = time.Millisecond
		return NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(NewFactory().Type()), cfg, next)
	})
}

// BenchmarkFileBaselineFilelogRegex is what a user would configure without
// this receiver: contrib's file_log with a regex_parser for the same format,
// on the same file. It only splits the line into strings; it types and maps
// nothing.
func BenchmarkFileBaselineFilelogRegex(b *testing.B) {
	benchFile(b, func(path string, next consumer.Logs) (receiver.Logs, error) {
		rc := regex.NewConfig()
		rc.Regex = ingressNginxRegex
		return benchtest.Filelog(path, next, operator.Config{Builder: rc})
	})
}

// BenchmarkPdataFloor is the pdata cost alone: log records with the same
// attributes as a mapped line, from strings and numbers already at hand. No
// receiver that emits these attributes as pdata can be faster per core.
func BenchmarkPdataFloor(b *testing.B) {
	lines := realisticLines(10000)
	d := &decoder{unwrap: unwrapper{mode: containerAuto}}
	d.parser, _ = al.New(al.FormatIngressNginx, "")
	var stats lineStats
	entries := append([]entry(nil), d.decode(lines[:100], &stats)...)
	strs := d.strings()
	const batch = 100
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(lines); i += batch {
			lrs := plog.NewLogRecordSlice()
			appendRecords(entries, strs, lrs, pcommon.Timestamp(1))
		}
	}
	benchtest.PerSecond(b, len(lines), "lines/s")
}
