package ingresslogreceiver

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
)

// corpusRequest is one line of testdata/corpus/*.tsv.
type corpusRequest struct {
	class, method, target string
	headers               []string
	body                  []byte
	line                  int
	from                  string // the client address it is sent from
}

// readCorpus reads a corpus file: class, method, target, then header lines
// and an optional "body: ..." field, tab-separated; '#' starts a comment.
func readCorpus(t *testing.T, name string) []corpusRequest {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", name))
	require.NoError(t, err)
	defer f.Close()
	var out []corpusRequest
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		require.GreaterOrEqual(t, len(fields), 3, "%s:%d: class, method, target", name, n)
		r := corpusRequest{class: fields[0], method: fields[1], target: fields[2], line: n}
		for _, f := range fields[3:] {
			if b, ok := strings.CutPrefix(f, "body: "); ok {
				r.body = []byte(b)
				r.headers = append(r.headers, "Content-Type: application/json")
				continue
			}
			require.Contains(t, f, ": ", "%s:%d: a header line", name, n)
			r.headers = append(r.headers, f)
		}
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

// corpusPipeline is a real nginx, configured as ingress-nginx, in front of a
// real backend, its access log read by the ingress_log receiver and judged by
// the security_rules processor with the ingress pack.
type corpusPipeline struct {
	addr    string
	out     *consumertest.LogsSink
	proc    processor.Logs
	stopped bool
}

func startCorpusPipeline(t *testing.T) *corpusPipeline {
	t.Helper()
	backend := httptest.NewServer(shopBackend())
	t.Cleanup(backend.Close)
	addr, accessLog := startNginx(t, strings.TrimPrefix(backend.URL, "http://"))
	p := &corpusPipeline{addr: addr, out: new(consumertest.LogsSink)}
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules = []string{"ingress"}
	pcfg.ReloadInterval = 0
	require.NoError(t, pcfg.Validate())
	var err error
	p.proc, err = pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, p.out)
	require.NoError(t, err)
	require.NoError(t, p.proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		if !p.stopped {
			require.NoError(t, p.proc.Shutdown(context.Background()))
		}
	})
	startReceiverInto(t, accessLog, nil, p.proc, new(consumertest.MetricsSink))
	return p
}

// send sends every request, each from its own loopback address (nginx logs
// it as the client, and the pack's throttling is per client), and returns
// the access records and the alerts by client address once every request
// has its record.
func (p *corpusPipeline) send(t *testing.T, reqs []corpusRequest, subnet int) (map[string]rec, map[string][]string) {
	t.Helper()
	status := map[string]int{}
	for i := range reqs {
		reqs[i].from = fmt.Sprintf("127.%d.%d.%d", subnet, i/250, i%250+1)
		r := reqs[i]
		status[r.from] = sendRaw(t, p.addr, r.from, r.method, r.target, r.headers, r.body)
	}
	events := map[string]rec{}
	alerts := map[string][]string{}
	require.Eventually(t, func() bool {
		events, alerts = map[string]rec{}, map[string][]string{}
		for _, r := range records(p.out) {
			a := r.Attributes()
			from := str(a, "client.address")
			if !strings.HasPrefix(from, fmt.Sprintf("127.%d.", subnet)) {
				continue
			}
			if r.EventName() == "security.alert" {
				alerts[from] = append(alerts[from], str(a, "security_rule.name"))
				continue
			}
			events[from] = r
		}
		return len(events) == len(reqs)
	}, 30*time.Second, 20*time.Millisecond, "one http.access record per request")
	for _, r := range reqs {
		assert.Equal(t, int64(status[r.from]), events[r.from].Attributes().AsRaw()["http.response.status_code"], "line %d", r.line)
	}
	return events, alerts
}

// The attack corpus through the real pipeline: at least 90% of the requests
// raise an alert, per class reported; the requests nginx refused itself (400,
// its variables empty) are parsed and judged like the others.
func TestAttackCorpus(t *testing.T) {
	p := startCorpusPipeline(t)
	t.Run("attacks.tsv", func(t *testing.T) {
		reqs := readCorpus(t, "attacks.tsv")
		require.GreaterOrEqual(t, len(reqs), 150)
		judgeAttacks(t, p, reqs, 10)
	})
	// Written after the rules and not used to tune them: the better
	// estimate for requests nobody wrote the rules for.
	t.Run("attacks-holdout.tsv", func(t *testing.T) {
		judgeAttacks(t, p, readCorpus(t, "attacks-holdout.tsv"), 11)
	})
}

func judgeAttacks(t *testing.T, p *corpusPipeline, reqs []corpusRequest, subnet int) {
	events, alerts := p.send(t, reqs, subnet)

	type tally struct{ sent, caught int }
	byClass := map[string]*tally{}
	var missed []string
	refused := 0
	for _, r := range reqs {
		c := byClass[r.class]
		if c == nil {
			c = &tally{}
			byClass[r.class] = c
		}
		c.sent++
		a := events[r.from].Attributes()
		assert.Equal(t, "<absent>", str(a, "k8ssec.parse.error"), "line %d parses", r.line)
		if code, _ := a.Get("http.response.status_code"); code.Int() == 400 {
			refused++
			assert.NotEmpty(t, str(a, "k8ssec.url.normalized"), "line %d: its request line is judged", r.line)
		}
		if len(alerts[r.from]) > 0 {
			c.caught++
			continue
		}
		missed = append(missed, fmt.Sprintf("%s:%d %s %s", r.class, r.line, r.method, r.target))
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	total := 0
	for _, c := range classes {
		total += byClass[c].caught
		t.Logf("%-10s %3d/%3d %5.1f%%", c, byClass[c].caught, byClass[c].sent, 100*float64(byClass[c].caught)/float64(byClass[c].sent))
	}
	rate := float64(total) / float64(len(reqs))
	t.Logf("total      %3d/%3d %5.1f%% (%d refused by nginx with 400, judged all the same)", total, len(reqs), 100*rate, refused)
	for _, m := range missed {
		t.Logf("missed: %s", m)
	}
	assert.GreaterOrEqual(t, rate, 0.90, "detection rate of the attack corpus")
	if subnet == 10 {
		assert.Positive(t, refused, "the corpus has requests nginx refuses itself")
	}
}

// The benign corpus through the real pipeline: no alert at all.
func TestBenignCorpus(t *testing.T) {
	p := startCorpusPipeline(t)
	t.Run("benign.tsv", func(t *testing.T) {
		reqs := readCorpus(t, "benign.tsv")
		require.GreaterOrEqual(t, len(reqs), 150)
		judgeBenign(t, p, reqs, 20)
	})
	t.Run("benign-holdout.tsv", func(t *testing.T) {
		judgeBenign(t, p, readCorpus(t, "benign-holdout.tsv"), 21)
	})
}

func judgeBenign(t *testing.T, p *corpusPipeline, reqs []corpusRequest, subnet int) {
	_, alerts := p.send(t, reqs, subnet)
	fp := 0
	for _, r := range reqs {
		if len(alerts[r.from]) > 0 {
			fp++
			t.Errorf("false positive %v on %s:%d %s %s", alerts[r.from], r.class, r.line, r.method, r.target)
		}
	}
	t.Logf("benign: %d requests, %d alerts", len(reqs), fp)
}

// One scanner, one alert: a burst of requests from one client raises each
// rule once, and the rest come as one summary with their count when the
// period ends (here: at shutdown).
func TestScannerThrottledPerClient(t *testing.T) {
	p := startCorpusPipeline(t)
	var reqs []corpusRequest
	for i := range 25 {
		reqs = append(reqs, corpusRequest{method: "GET", target: fmt.Sprintf("/admin/page-%d", i),
			headers: []string{"User-Agent: Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"}})
	}
	const from = "127.30.0.1"
	for _, r := range reqs {
		sendRaw(t, p.addr, from, r.method, r.target, r.headers, nil)
	}
	scannerAlerts := func() (alerts, summaries []plog.LogRecord) {
		for _, r := range records(p.out) {
			a := r.Attributes()
			if r.EventName() != "security.alert" || str(a, "client.address") != from || str(a, "security_rule.name") != "Scanner user agent" {
				continue
			}
			if v, ok := a.Get("security_rule.throttled"); ok && v.Bool() {
				summaries = append(summaries, r.LogRecord)
			} else {
				alerts = append(alerts, r.LogRecord)
			}
		}
		return alerts, summaries
	}
	require.Eventually(t, func() bool {
		n := 0
		for _, r := range records(p.out) {
			if r.EventName() == "http.access" && str(r.Attributes(), "client.address") == from {
				n++
			}
		}
		return n == len(reqs)
	}, 20*time.Second, 20*time.Millisecond)
	alerts, summaries := scannerAlerts()
	assert.Len(t, alerts, 1, "one alert for the scanner")
	assert.Empty(t, summaries, "the period has not ended")

	require.NoError(t, p.proc.Shutdown(context.Background()))
	p.stopped = true
	_, summaries = scannerAlerts()
	require.Len(t, summaries, 1, "one summary when the period ends")
	count, _ := summaries[0].Attributes().Get("security_rule.count")
	assert.Equal(t, int64(len(reqs)-1), count.Int(), "the summary counts the suppressed requests")
}

// A line that does not fit the format is still emitted, as unparsed, and the
// payload rules judge it: the whole line is normalized for them.
func TestUnparsedLineJudged(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	out := new(consumertest.LogsSink)
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules = []string{"ingress"}
	pcfg.ReloadInterval = 0
	proc, err := pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, out)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	startReceiverInto(t, logPath, func(c *Config) { c.Container = containerNone }, proc, new(consumertest.MetricsSink))

	// A proxy in front of the controller wrote its own format.
	line := `2026-12-06T08:00:00Z 203.0.113.7 GET /products?id=1%20UNION%20SELECT%20password%20FROM%20users-- 200`
	// Ordinary lines that do not parse either: another proxy's, and what the
	// controller writes to stderr beside its access log (klog, nginx's error
	// log), which a container log interleaves.
	benign := []string{
		`2026-12-06T08:00:01Z 203.0.113.8 GET /products?q=union+jack 200`,
		`I1206 08:00:00.123456       7 event.go:377] Event(v1.ObjectReference{Kind:"Ingress", Namespace:"shop", Name:"web", UID:"0b7c", APIVersion:"networking.k8s.io/v1", ResourceVersion:"4711", FieldPath:""}): type: 'Normal' reason: 'Sync' Scheduled for sync`,
		`W1206 08:00:01.000000       7 controller.go:1214] Service "shop/web" does not have any active Endpoint.`,
		`2026/12/06 08:00:02 [error] 31#31: *123 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.1, server: shop.example.com, request: "GET /api/orders?page=2 HTTP/1.1", upstream: "http://10.244.1.7:8080/api/orders?page=2", host: "shop.example.com"`,
		`2026/12/06 08:00:03 [warn] 31#31: *124 a client request body is buffered to a temporary file /tmp/client-body/0000000001, client: 10.0.0.2, server: shop.example.com, request: "POST /api/upload HTTP/1.1", host: "shop.example.com"`,
	}
	filetest.AppendLines(t, logPath, append([]string{line}, benign...)...)
	var got []rec
	require.Eventually(t, func() bool {
		got = records(out)
		return len(got) >= 2+len(benign)
	}, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // any alert on the benign line would be in by now
	got = records(out)
	var alerts []string
	unparsed := 0
	for _, r := range got {
		a := r.Attributes()
		if r.EventName() == "security.alert" {
			alerts = append(alerts, str(a, "security_rule.name")+": "+str(a, "log.record.original"))
			continue
		}
		assert.NotEqual(t, "<absent>", str(a, "k8ssec.parse.error"))
		unparsed++
	}
	assert.Equal(t, 1+len(benign), unparsed)
	assert.Equal(t, []string{"SQL injection attempt: " + line}, alerts)
}

// Requests nginx refuses itself with a 400 (a target above the root, a dot
// segment spelled .%2e) are logged before the Ingress's variables are set:
// [] for the upstream names, - for the upstream, nginx's own request id.
// Those lines parse, keep the target as sent, and the pack judges them.
func TestNginxRefusedRequestsJudged(t *testing.T) {
	p := startCorpusPipeline(t)
	reqs := []corpusRequest{
		{method: "GET", target: "/../../etc/passwd"},
		{method: "GET", target: "/a/.%2e/.%2e/.%2e/etc/passwd"},
		{method: "GET", target: "/static/%2e%2e/%2e%2e/%2e%2e/etc/shadow"},
		{method: "GET", target: "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh"},
	}
	events, alerts := p.send(t, reqs, 40)
	for _, r := range reqs {
		a := events[r.from].Attributes()
		assert.Equal(t, int64(400), a.AsRaw()["http.response.status_code"], r.target)
		assert.Equal(t, "<absent>", str(a, "k8ssec.parse.error"), r.target)
		assert.Equal(t, "<absent>", str(a, "k8ssec.upstream.name"), "%s: [] is no upstream", r.target)
		assert.Equal(t, r.target, str(a, "url.path"), "the target as sent")
		assert.Contains(t, alerts[r.from], "Path traversal attempt", r.target)
	}
}
