// Package accesslog parses HTTP access log lines (nginx and ingress-nginx,
// Traefik, Envoy; text and JSON) into fields: views into the line, typed by
// what they mean, not by the proxy's name for them.
package accesslog // import "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"

// Field is what a value in a log line means.
type Field uint8

// The fields a parser fills. Times and durations name their unit.
const (
	None                   Field = iota // a value the receiver does not use
	RemoteAddr                          // the socket peer (nginx $remote_addr)
	RemoteAddrPort                      // the peer as address:port (Envoy, Traefik)
	RemoteUser                          // basic-auth user
	TimeLocal                           // 02/Jan/2006:15:04:05 -0700
	TimeISO8601                         // RFC 3339, fraction optional
	TimeMsec                            // Unix seconds with milliseconds
	Request                             // "METHOD target PROTOCOL"
	Method                              // request method
	RequestURI                          // the target as sent: path?query
	Path                                // the path without the query
	Query                               // the query without '?'
	Protocol                            // HTTP/1.1
	Scheme                              // http or https
	Host                                // Host header or server name
	Status                              // the response status code
	BodyBytesSent                       // response body bytes
	BytesSent                           // response bytes, headers included
	RequestLength                       // request bytes: line, headers and body
	RequestBodyLength                   // request body bytes
	RequestTimeSec                      // request duration in seconds (0.004)
	RequestTimeMs                       // ... in milliseconds
	RequestTimeNs                       // ... in nanoseconds
	Referer                             // Referer header
	UserAgent                           // User-Agent header
	XForwardedFor                       // X-Forwarded-For header
	RequestID                           // a request id (ingress-nginx $req_id, X-Request-Id)
	ProxyUpstreamName                   // ingress-nginx: namespace-service-port
	ProxyAltUpstreamName                // ingress-nginx canary upstream
	UpstreamAddr                        // upstream address(es), one per attempt
	UpstreamResponseLength              // upstream response bytes, per attempt
	UpstreamTimeSec                     // upstream duration in seconds, per attempt
	UpstreamTimeMs                      // ... in milliseconds
	UpstreamStatus                      // upstream status, per attempt
	Namespace                           // the backend's namespace
	IngressName                         // the Ingress
	ServiceName                         // the backend Service
	ServicePort                         // the backend Service's port (number or name)
	UpstreamService                     // a proxy's service name (Traefik ns-svc-port@provider, Istio outbound|port||svc.ns...)
	Router                              // Traefik router
	ResponseFlags                       // Envoy response flags
	NumFields
)

// A Record's presence bits are one uint64.
var _ [64 - NumFields]struct{}

// Record holds one parsed line: views into the line or into the parser's
// buffer, valid until the parser's next Parse.
//
// A field is present when its bit in has is set: Reset clears the bits, not
// the views, so it writes no pointer. Clearing some 40 views on every line
// would cost write barriers while the garbage collector marks, and a
// Record lives in the heap. A view left from an earlier line keeps that
// line's buffer from the collector until a later line overwrites it.
type Record struct {
	v   [NumFields][]byte
	has uint64
}

// Reset clears every field.
func (r *Record) Reset() { r.has = 0 }

// Get returns a field's value, nil when absent.
func (r *Record) Get(f Field) []byte {
	if r.has&(1<<f) == 0 {
		return nil
	}
	return r.v[f]
}

// Has reports whether the field is present.
func (r *Record) Has(f Field) bool { return r.has&(1<<f) != 0 }

// Put sets a field, as derived from others: a path from a request line.
// A nil v removes it.
func (r *Record) Put(f Field, v []byte) {
	if v == nil {
		r.has &^= 1 << f
		return
	}
	r.v[f] = v
	r.has |= 1 << f
}

// set keeps v unless it is nginx's and Envoy's "-" for no value.
func (r *Record) set(f Field, v []byte) {
	if f == None || (len(v) == 1 && v[0] == '-') || len(v) == 0 {
		return
	}
	r.v[f] = v
	r.has |= 1 << f
}

// Parser turns one line into a Record.
type Parser interface {
	// Parse fills r (after resetting it) or reports why the line does not
	// fit the format.
	Parse(line []byte, r *Record) error
}
