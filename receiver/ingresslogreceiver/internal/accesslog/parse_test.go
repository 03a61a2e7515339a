package accesslog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Lines as each proxy writes them, and what must come out.
var formatCases = []struct {
	name, format, logFormat, line string
	want                          map[Field]string
}{
	{
		name:   "ingress-nginx default",
		format: FormatIngressNginx,
		line:   `10.244.0.1 - alice [29/Nov/2026:10:11:12 +0100] "GET /api/v1/items?id=7&x=1 HTTP/1.1" 200 612 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 431 0.004 [shop-web-8080] [] 10.244.1.7:8080 612 0.004 200 8f1d0c8a2b9e4c6f7a1b2c3d4e5f6a7b`,
		want: map[Field]string{RemoteAddr: "10.244.0.1", RemoteUser: "alice", TimeLocal: "29/Nov/2026:10:11:12 +0100",
			Request: "GET /api/v1/items?id=7&x=1 HTTP/1.1", Status: "200", BodyBytesSent: "612", Referer: "https://shop.example.com/",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", RequestLength: "431", RequestTimeSec: "0.004", ProxyUpstreamName: "shop-web-8080",
			UpstreamAddr: "10.244.1.7:8080", UpstreamResponseLength: "612", UpstreamTimeSec: "0.004", UpstreamStatus: "200",
			RequestID: "8f1d0c8a2b9e4c6f7a1b2c3d4e5f6a7b"},
	},
	{
		name:   "ingress-nginx, retried upstream and canary",
		format: FormatIngressNginx,
		line:   `203.0.113.9 - - [29/Nov/2026:10:11:12 +0000] "POST /login HTTP/2.0" 502 150 "-" "curl/8.5.0" 90 0.020 [shop-web-http] [shop-web-canary-http] 10.244.1.7:8080, 10.244.1.8:8080 : 10.244.1.9:8080 0, 0 : 150 0.010, 0.008 : 0.002 502, 502 : 502 abc`,
		want: map[Field]string{RemoteAddr: "203.0.113.9", Status: "502", UserAgent: "curl/8.5.0", ProxyUpstreamName: "shop-web-http",
			ProxyAltUpstreamName: "shop-web-canary-http", UpstreamAddr: "10.244.1.7:8080, 10.244.1.8:8080 : 10.244.1.9:8080",
			UpstreamResponseLength: "0, 0 : 150", UpstreamTimeSec: "0.010, 0.008 : 0.002", UpstreamStatus: "502, 502 : 502", RequestID: "abc",
			Request: "POST /login HTTP/2.0", TimeLocal: "29/Nov/2026:10:11:12 +0000", BodyBytesSent: "150", RequestLength: "90", RequestTimeSec: "0.020"},
	},
	{
		// What nginx writes for a request it refuses itself (400, a target
		// above the root): the Ingress's variables were never set.
		name:   "ingress-nginx, refused by nginx: empty variables",
		format: FormatIngressNginx,
		line:   `127.0.0.1 - - [06/Dec/2026:08:18:01 +0000] "GET /a/.%2e/.%2e/etc/passwd HTTP/1.1" 400 157 "-" "-" 38 0.000 [] [] - - - - fe254bbbb74162ec2c40921b870d41ef`,
		want: map[Field]string{RemoteAddr: "127.0.0.1", TimeLocal: "06/Dec/2026:08:18:01 +0000", Request: "GET /a/.%2e/.%2e/etc/passwd HTTP/1.1",
			Status: "400", BodyBytesSent: "157", RequestLength: "38", RequestTimeSec: "0.000", RequestID: "fe254bbbb74162ec2c40921b870d41ef"},
	},
	{
		name:   "ingress-nginx, no request id and the trailing space trimmed",
		format: FormatIngressNginx,
		line:   `127.0.0.1 - - [06/Dec/2026:08:18:01 +0000] "GET /../../etc/passwd HTTP/1.1" 400 157 "-" "-" 32 0.000 [] [] - - - -`,
		want: map[Field]string{RemoteAddr: "127.0.0.1", TimeLocal: "06/Dec/2026:08:18:01 +0000", Request: "GET /../../etc/passwd HTTP/1.1",
			Status: "400", BodyBytesSent: "157", RequestLength: "32", RequestTimeSec: "0.000"},
	},
	{
		name:   "ingress-nginx, a request line nginx could not read",
		format: FormatIngressNginx,
		line:   `127.0.0.1 - - [06/Dec/2026:08:18:01 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-" 0 0.000 [] [] - - - - b50b1ce9`,
		want: map[Field]string{RemoteAddr: "127.0.0.1", TimeLocal: "06/Dec/2026:08:18:01 +0000", Request: `\x16\x03\x01\x02\x00\x01`,
			Status: "400", BodyBytesSent: "157", RequestLength: "0", RequestTimeSec: "0.000", RequestID: "b50b1ce9"},
	},
	{
		name:   "nginx combined",
		format: FormatNginxCombined,
		line:   `192.0.2.1 - - [29/Nov/2026:10:11:12 +0000] "GET /index.html HTTP/1.1" 304 0 "-" "Wget/1.21"`,
		want: map[Field]string{RemoteAddr: "192.0.2.1", TimeLocal: "29/Nov/2026:10:11:12 +0000", Request: "GET /index.html HTTP/1.1",
			Status: "304", BodyBytesSent: "0", UserAgent: "Wget/1.21"},
	},
	{
		name:      "a pasted log_format",
		format:    FormatNginx,
		logFormat: `$time_iso8601|$http_x_forwarded_for|$request_method|$scheme://$host$request_uri|$status|${request_time}s|$namespace/$ingress_name/$service_name:$service_port|$unknown_var`,
		line:      `2026-11-29T10:11:12+00:00|198.51.100.7, 10.0.0.2|DELETE|https://api.example.com/v1/users/3?force=1|204|0.120s|prod/api/users:http|whatever`,
		want: map[Field]string{TimeISO8601: "2026-11-29T10:11:12+00:00", XForwardedFor: "198.51.100.7, 10.0.0.2", Method: "DELETE",
			Scheme: "https", Host: "api.example.com", RequestURI: "/v1/users/3?force=1", Status: "204", RequestTimeSec: "0.120",
			Namespace: "prod", IngressName: "api", ServiceName: "users", ServicePort: "http"},
	},
	{
		name:   "traefik common log format",
		format: FormatTraefik,
		line:   `10.42.0.1 - - [29/Nov/2026:10:11:12 +0000] "GET /whoami HTTP/1.1" 200 380 "-" "Go-http-client/1.1" 17 "default-whoami-example-com@kubernetes" "http://10.42.0.9:80" 3ms`,
		want: map[Field]string{RemoteAddr: "10.42.0.1", TimeLocal: "29/Nov/2026:10:11:12 +0000", Request: "GET /whoami HTTP/1.1", Status: "200",
			BodyBytesSent: "380", UserAgent: "Go-http-client/1.1", Router: "default-whoami-example-com@kubernetes", UpstreamAddr: "http://10.42.0.9:80",
			RequestTimeMs: "3"},
	},
	{
		name:   "envoy default",
		format: FormatEnvoy,
		line:   `[2026-11-29T10:11:12.310Z] "GET /productpage HTTP/1.1" 200 - 0 5183 25 24 "192.0.2.44" "Mozilla/5.0" "4c8f6a1e-3b2d-4c9e-8f7a-1b2c3d4e5f60" "bookinfo.example.com" "10.244.2.5:9080"`,
		want: map[Field]string{TimeISO8601: "2026-11-29T10:11:12.310Z", Request: "GET /productpage HTTP/1.1", Status: "200",
			RequestBodyLength: "0", BytesSent: "5183", RequestTimeMs: "25", UpstreamTimeMs: "24", XForwardedFor: "192.0.2.44",
			UserAgent: "Mozilla/5.0", RequestID: "4c8f6a1e-3b2d-4c9e-8f7a-1b2c3d4e5f60", Host: "bookinfo.example.com", UpstreamAddr: "10.244.2.5:9080"},
	},
	{
		name:   "ingress-nginx escape=json",
		format: FormatIngressNginxJSON,
		line:   `{"time": "2026-11-29T10:11:12+00:00", "remote_addr": "10.244.0.1", "request_id": "r1", "status": 404, "method": "GET", "path": "/a\"b", "query": "q=\u003cscript\u003e", "request_time": 0.001, "http_user_agent": "sqlmap/1.7", "proxy_upstream_name": "shop-web-80", "nested": {"x": 1}}`,
		want: map[Field]string{TimeISO8601: "2026-11-29T10:11:12+00:00", RemoteAddr: "10.244.0.1", RequestID: "r1", Status: "404", Method: "GET",
			Path: `/a"b`, Query: "q=<script>", RequestTimeSec: "0.001", UserAgent: "sqlmap/1.7", ProxyUpstreamName: "shop-web-80"},
	},
	{
		name:   "traefik JSON",
		format: FormatTraefikJSON,
		line:   `{"ClientAddr":"10.42.0.1:51234","ClientHost":"10.42.0.1","DownstreamContentSize":19,"DownstreamStatus":401,"Duration":1234567,"OriginStatus":401,"RequestMethod":"POST","RequestPath":"/login?next=/","RequestProtocol":"HTTP/1.1","RequestHost":"app.example.com","RouterName":"shop-app-ingress@kubernetes","ServiceName":"shop-app-80@kubernetes","ServiceAddr":"10.42.0.9:80","StartUTC":"2026-11-29T10:11:12.123456789Z","request_User-Agent":"hydra","level":"info"}`,
		want: map[Field]string{RemoteAddr: "10.42.0.1", BodyBytesSent: "19", Status: "401", RequestTimeNs: "1234567", UpstreamStatus: "401", Method: "POST",
			RequestURI: "/login?next=/", Protocol: "HTTP/1.1", Host: "app.example.com", Router: "shop-app-ingress@kubernetes",
			UpstreamService: "shop-app-80@kubernetes", UpstreamAddr: "10.42.0.9:80", TimeISO8601: "2026-11-29T10:11:12.123456789Z", UserAgent: "hydra"},
	},
	{
		name:   "envoy JSON (Istio)",
		format: FormatEnvoyJSON,
		line:   `{"authority":"reviews:9080","bytes_received":0,"bytes_sent":295,"downstream_remote_address":"10.244.0.12:43210","duration":7,"method":"GET","path":"/reviews/0","protocol":"HTTP/1.1","request_id":"r2","response_code":200,"response_flags":"-","start_time":"2026-11-29T10:11:12.000Z","upstream_cluster":"outbound|9080||reviews.bookinfo.svc.cluster.local","upstream_host":"10.244.1.20:9080","upstream_service_time":"6","user_agent":"curl/8.5.0","x_forwarded_for":null}`,
		want: map[Field]string{Host: "reviews:9080", RequestBodyLength: "0", BytesSent: "295", RemoteAddrPort: "10.244.0.12:43210", RequestTimeMs: "7",
			Method: "GET", Path: "/reviews/0", Protocol: "HTTP/1.1", RequestID: "r2", Status: "200", TimeISO8601: "2026-11-29T10:11:12.000Z",
			UpstreamService: "outbound|9080||reviews.bookinfo.svc.cluster.local", UpstreamAddr: "10.244.1.20:9080", UpstreamTimeMs: "6", UserAgent: "curl/8.5.0"},
	},
}

func fields(r *Record) map[Field]string {
	got := map[Field]string{}
	for f := range NumFields {
		if v := r.Get(f); v != nil {
			got[f] = string(v)
		}
	}
	return got
}

func TestFormats(t *testing.T) {
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.format, tc.logFormat)
			require.NoError(t, err)
			var r Record
			require.NoError(t, p.Parse([]byte(tc.line), &r))
			assert.Equal(t, tc.want, fields(&r))
		})
	}
}

// Detection finds every fixed format, also when they alternate.
func TestAutoDetects(t *testing.T) {
	p, err := New(FormatAuto, "")
	require.NoError(t, err)
	for range 2 {
		for _, tc := range formatCases {
			if tc.format == FormatNginx {
				continue
			}
			var r Record
			require.NoError(t, p.Parse([]byte(tc.line), &r), tc.name)
			assert.Equal(t, tc.want, fields(&r), tc.name)
		}
	}
}

func TestGarbage(t *testing.T) {
	ingress, err := New(FormatIngressNginx, "")
	require.NoError(t, err)
	js, err := New(FormatIngressNginxJSON, "")
	require.NoError(t, err)
	for _, c := range []struct {
		p    Parser
		line string
		want string
	}{
		{ingress, ``, `no " - " after $remote_addr`},
		{ingress, `hello world`, `no " - " after $remote_addr`},
		{ingress, `10.0.0.1 - - [29/Nov/2026:10:11:12 +0000] "GET / HTTP/1.1" 200 612`, `no " \"" after $body_bytes_sent`},
		{ingress, `10.0.0.1 - - [29/Nov/2026:10:11:12 +0000] "GET / HTTP/1.1" abc 0 "-" "-" 1 0.1 [-] [] - - - - x`, `status is not a number`},
		{js, `{"status": "ok"}`, `status is not a number`},
		{js, `{"status": 200`, `not a JSON object`},
		{js, `[1,2]`, `not a JSON object`},
		{js, `{"status": [200]}`, `a field is not a string, number or null`},
	} {
		var r Record
		err := c.p.Parse([]byte(c.line), &r)
		require.Error(t, err, c.line)
		assert.Equal(t, c.want, err.Error(), c.line)
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := CompileNginx(`$remote_addr$remote_user`)
	assert.ErrorContains(t, err, "nothing between them")
	_, err = CompileNginx(`no variables`)
	assert.ErrorContains(t, err, "no variables")
	_, err = New(FormatNginx, "")
	assert.ErrorContains(t, err, "needs log_format")
	_, err = New("apache", "")
	assert.ErrorContains(t, err, "unknown format")
}

func TestValues(t *testing.T) {
	tl, ok := ParseTimeLocal([]byte("29/Nov/2026:10:11:12 +0100"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 11, 29, 9, 11, 12, 0, time.UTC), tl)
	iso, ok := ParseISO8601([]byte("2026-11-29T10:11:12.123456789Z"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 11, 29, 10, 11, 12, 123456789, time.UTC), iso)
	iso, ok = ParseISO8601([]byte("2026-11-29T10:11:12-02:30"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 11, 29, 12, 41, 12, 0, time.UTC), iso)
	ms, ok := ParseMsec([]byte("1700000000.250"))
	require.True(t, ok)
	assert.Equal(t, int64(1700000000250), ms.UnixMilli())
	_, ok = ParseTimeLocal([]byte("29/Foo/2026:10:11:12 +0100"))
	assert.False(t, ok)

	d, ok := ParseDecimal([]byte("0.004"))
	assert.True(t, ok)
	assert.InDelta(t, 0.004, d, 1e-12)
	_, ok = ParseDecimal([]byte("0.0x4"))
	assert.False(t, ok)
	_, ok = ParseInt([]byte("99999999999999999999"))
	assert.False(t, ok)
	s, ok := SumDecimal([]byte("0.010, 0.008 : 0.002"))
	assert.True(t, ok)
	assert.InDelta(t, 0.020, s, 1e-12)
	assert.Equal(t, "200", string(Last([]byte("502, 502 : 200"))))
}
