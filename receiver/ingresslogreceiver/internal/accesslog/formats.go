package accesslog

import (
	"fmt"
	"sort"
)

// The log formats a receiver can name.
const (
	FormatIngressNginx     = "ingress_nginx"      // ingress-nginx's default log-format-upstream
	FormatIngressNginxJSON = "ingress_nginx_json" // an escape=json log-format-upstream
	FormatNginxCombined    = "nginx_combined"     // nginx's predefined combined format
	FormatNginx            = "nginx"              // the log_format given in the config
	FormatTraefik          = "traefik"            // Traefik's common log format
	FormatTraefikJSON      = "traefik_json"
	FormatEnvoy            = "envoy" // Envoy's default access log format
	FormatEnvoyJSON        = "envoy_json"
	FormatAuto             = "auto" // detect per line among the fixed formats
)

// Log formats as nginx log_format strings: the ingress-nginx default
// (controller ConfigMap log-format-upstream), nginx's combined, and Traefik's
// and Envoy's default text formats written with this package's own variables.
const (
	IngressNginxLogFormat  = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id`
	NginxCombinedLogFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
	// <addr> - <user> [<time>] "<request>" <status> <size> "<referer>" "<ua>" <request count> "<router>" "<server URL>" <duration>ms
	traefikLogFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $k8ssec_request_count "$k8ssec_router" "$upstream_addr" ${k8ssec_request_time_ms}ms`
	// [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
	// %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
	// "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
	envoyLogFormat = `[$time_iso8601] "$request" $status $k8ssec_response_flags $k8ssec_request_body $bytes_sent $k8ssec_request_time_ms $k8ssec_upstream_time_ms "$http_x_forwarded_for" "$http_user_agent" "$req_id" "$host" "$upstream_addr"`
)

var textFormats = map[string]string{
	FormatIngressNginx:  IngressNginxLogFormat,
	FormatNginxCombined: NginxCombinedLogFormat,
	FormatTraefik:       traefikLogFormat,
	FormatEnvoy:         envoyLogFormat,
}

var jsonFormats = map[string]bool{FormatIngressNginxJSON: true, FormatTraefikJSON: true, FormatEnvoyJSON: true}

// Formats lists the names New accepts.
func Formats() []string {
	names := []string{FormatNginx, FormatAuto}
	for n := range textFormats {
		names = append(names, n)
	}
	for n := range jsonFormats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns a parser for a named format; logFormat is the nginx log_format
// string for FormatNginx. A parser serves one goroutine at a time.
func New(format, logFormat string) (Parser, error) {
	switch {
	case format == FormatNginx:
		if logFormat == "" {
			return nil, fmt.Errorf("format %q needs log_format", format)
		}
		return CompileNginx(logFormat)
	case format == FormatAuto:
		return newDetector(), nil
	case jsonFormats[format]:
		return &JSONParser{}, nil
	}
	if f, ok := textFormats[format]; ok {
		return CompileNginx(f)
	}
	return nil, fmt.Errorf("unknown format %q (known: %v)", format, Formats())
}

// detector tries the fixed formats on each line, the last one that fitted
// first, so that a steady stream costs one attempt per line.
type detector struct {
	parsers []Parser
	last    int
}

func newDetector() *detector {
	d := &detector{}
	// Most specific first: ingress-nginx's and Traefik's lines start like
	// combined ones and only fit their own format whole.
	for _, f := range []string{FormatIngressNginx, FormatTraefik, FormatEnvoy, FormatNginxCombined} {
		p, err := CompileNginx(textFormats[f])
		if err != nil {
			panic(err) // the built-in formats compile
		}
		d.parsers = append(d.parsers, p)
	}
	d.parsers = append(d.parsers, &JSONParser{})
	return d
}

func (d *detector) Parse(line []byte, r *Record) error {
	if len(line) > 0 && line[0] == '{' {
		return d.parsers[len(d.parsers)-1].Parse(line, r)
	}
	err := d.parsers[d.last].Parse(line, r)
	if err == nil {
		return nil
	}
	for i, p := range d.parsers[:len(d.parsers)-1] {
		if i == d.last {
			continue
		}
		if p.Parse(line, r) == nil {
			d.last = i
			return nil
		}
	}
	return err
}
