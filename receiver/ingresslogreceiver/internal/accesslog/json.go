package accesslog

import (
	"errors"

	"github.com/valyala/fastjson"
)

// jsonKeys maps the keys of JSON access logs to fields: ingress-nginx's
// escape=json formats (keys are usually nginx's variable names), Traefik's
// JSON access log, and Envoy's (and Istio's) JSON format. Keys are
// case-sensitive; Traefik's are capitalised, which keeps its Duration
// (nanoseconds) apart from Envoy's duration (milliseconds).
var jsonKeys = func() map[string]Field {
	m := map[string]Field{
		// ingress-nginx and nginx spellings beyond the variable names.
		"time":             TimeISO8601,
		"timestamp":        TimeISO8601,
		"method":           Method,
		"path":             Path,
		"query":            Query,
		"protocol":         Protocol,
		"http_referrer":    Referer,
		"referer":          Referer,
		"user_agent":       UserAgent,
		"x_forwarded_for":  XForwardedFor,
		"x-forwarded-for":  XForwardedFor,
		"x_request_id":     RequestID,
		"x-request-id":     RequestID,
		"response_code":    Status,
		"authority":        Host,
		"bytes_received":   RequestBodyLength,
		"upstream_host":    UpstreamAddr,
		"upstream_cluster": UpstreamService,
		// Envoy / Istio.
		"start_time":                TimeISO8601,
		"duration":                  RequestTimeMs,
		"upstream_service_time":     UpstreamTimeMs,
		"downstream_remote_address": RemoteAddrPort,
		"response_flags":            ResponseFlags,
		// Traefik.
		"ClientHost":              RemoteAddr,
		"ClientUsername":          RemoteUser,
		"StartUTC":                TimeISO8601,
		"RequestMethod":           Method,
		"RequestPath":             RequestURI,
		"RequestProtocol":         Protocol,
		"RequestScheme":           Scheme,
		"RequestHost":             Host,
		"DownstreamStatus":        Status,
		"DownstreamContentSize":   BodyBytesSent,
		"RequestContentSize":      RequestBodyLength,
		"Duration":                RequestTimeNs,
		"OriginStatus":            UpstreamStatus,
		"OriginContentSize":       UpstreamResponseLength,
		"ServiceAddr":             UpstreamAddr,
		"ServiceName":             UpstreamService,
		"RouterName":              Router,
		"request_User-Agent":      UserAgent,
		"request_Referer":         Referer,
		"request_X-Forwarded-For": XForwardedFor,
		"request_X-Request-Id":    RequestID,
	}
	for k, v := range nginxVariables {
		m[k] = v
	}
	return m
}()

var (
	errNotJSON   = errors.New("not a JSON object")
	errJSONValue = errors.New("a field is not a string, number or null")
)

// JSONParser parses one JSON object per line. Strings are unescaped into the
// parser's own buffer; numbers are kept as their text.
type JSONParser struct {
	p       fastjson.Parser
	numbers []byte // the text of this line's numbers
	err     error
	r       *Record
}

// Parse implements Parser.
func (j *JSONParser) Parse(line []byte, r *Record) error {
	r.Reset()
	v, err := j.p.ParseBytes(line)
	if err != nil {
		return errNotJSON
	}
	o, err := v.Object()
	if err != nil {
		return errNotJSON
	}
	j.err, j.r, j.numbers = nil, r, j.numbers[:0]
	o.Visit(j.visit)
	j.r = nil
	if j.err != nil {
		return j.err
	}
	if s := r.Get(Status); s != nil && !isDigits(s) {
		return errStatus
	}
	return nil
}

func (j *JSONParser) visit(key []byte, v *fastjson.Value) {
	f, ok := jsonKeys[string(key)] // no allocation: a map index by converted bytes
	if !ok {
		return
	}
	switch v.Type() {
	case fastjson.TypeString:
		j.r.set(f, v.GetStringBytes())
	case fastjson.TypeNumber:
		// MarshalTo of a number appends its original text. Earlier views
		// stay valid if appending moves the buffer: they keep the old one.
		start := len(j.numbers)
		j.numbers = v.MarshalTo(j.numbers)
		j.r.set(f, j.numbers[start:len(j.numbers):len(j.numbers)])
	case fastjson.TypeNull:
	default:
		j.err = errJSONValue
	}
}
