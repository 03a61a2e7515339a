package accesslog

// nginxVariables maps nginx (and ingress-nginx) variable names to fields.
// Names that are not here are still parsed, to find where the next value
// starts, and then dropped.
var nginxVariables = map[string]Field{
	"remote_addr":                     RemoteAddr,
	"realip_remote_addr":              RemoteAddr,
	"remote_user":                     RemoteUser,
	"time_local":                      TimeLocal,
	"time_iso8601":                    TimeISO8601,
	"msec":                            TimeMsec,
	"request":                         Request,
	"request_method":                  Method,
	"request_uri":                     RequestURI,
	"uri":                             Path,
	"document_uri":                    Path,
	"args":                            Query,
	"query_string":                    Query,
	"server_protocol":                 Protocol,
	"scheme":                          Scheme,
	"host":                            Host,
	"http_host":                       Host,
	"server_name":                     Host,
	"status":                          Status,
	"body_bytes_sent":                 BodyBytesSent,
	"bytes_sent":                      BytesSent,
	"request_length":                  RequestLength,
	"content_length":                  RequestBodyLength,
	"http_content_length":             RequestBodyLength,
	"request_time":                    RequestTimeSec,
	"http_referer":                    Referer,
	"http_user_agent":                 UserAgent,
	"http_x_forwarded_for":            XForwardedFor,
	"proxy_add_x_forwarded_for":       XForwardedFor,
	"req_id":                          RequestID,
	"request_id":                      RequestID,
	"http_x_request_id":               RequestID,
	"proxy_upstream_name":             ProxyUpstreamName,
	"proxy_alternative_upstream_name": ProxyAltUpstreamName,
	"upstream_addr":                   UpstreamAddr,
	"upstream_response_length":        UpstreamResponseLength,
	"upstream_response_time":          UpstreamTimeSec,
	"upstream_status":                 UpstreamStatus,
	"namespace":                       Namespace,
	"ingress_name":                    IngressName,
	"service_name":                    ServiceName,
	"service_port":                    ServicePort,

	// Not nginx's: the names this package's own templates use for Traefik's
	// and Envoy's text formats (formats.go).
	"k8ssec_request_time_ms":  RequestTimeMs,
	"k8ssec_upstream_time_ms": UpstreamTimeMs,
	"k8ssec_remote_addr_port": RemoteAddrPort,
	"k8ssec_router":           Router,
	"k8ssec_upstream_service": UpstreamService,
	"k8ssec_response_flags":   ResponseFlags,
	"k8ssec_request_body":     RequestBodyLength,
}

// listField reports fields nginx writes once per upstream attempt, joined by
// ", " (next upstream) or " : " (internal redirect), spaces included.
func listField(f Field) bool {
	switch f {
	case UpstreamAddr, UpstreamResponseLength, UpstreamTimeSec, UpstreamStatus:
		return true
	}
	return false
}
