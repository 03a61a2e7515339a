package ingresslogreceiver

import (
	"bytes"
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/httpnorm"
	al "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
)

// mapper turns parsed lines into entries; it belongs to one decoder.
type mapper struct {
	trusted    []netip.Prefix
	namespaces [][]byte
	rec        al.Record
	arena      arena
	norm       httpnorm.Normalizer
	target     []byte
}

// mapLine fills e from a parsed record.
func (m *mapper) mapLine(e *entry) {
	r := &m.rec
	a := &m.arena

	if req := r.Get(al.Request); req != nil {
		splitRequest(r, req)
	}
	if uri := r.Get(al.RequestURI); uri != nil && !r.Has(al.Path) {
		if q := bytes.IndexByte(uri, '?'); q >= 0 {
			r.Put(al.Path, uri[:q])
			if !r.Has(al.Query) && q+1 < len(uri) {
				r.Put(al.Query, uri[q+1:])
			}
		} else {
			r.Put(al.Path, uri)
		}
	}

	peer := r.Get(al.RemoteAddr)
	if peer == nil && r.Get(al.RemoteAddrPort) != nil {
		peer = stripPort(r.Get(al.RemoteAddrPort))
	}
	client, viaXFF := clientAddress(peer, r.Get(al.XForwardedFor), m.trusted)
	e.str(a, keyClientAddress, client)
	if viaXFF && peer != nil {
		e.str(a, keyPeerAddress, peer)
	}
	e.str(a, keyUserName, r.Get(al.RemoteUser))
	if method := r.Get(al.Method); method != nil {
		e.str(a, keyMethod, method)
		e.method = knownMethod(method)
	}
	e.str(a, keyPath, r.Get(al.Path))
	e.str(a, keyQuery, r.Get(al.Query))
	m.normalize(e)
	e.str(a, keyScheme, r.Get(al.Scheme))
	if p := r.Get(al.Protocol); len(p) > 5 && string(p[:5]) == "HTTP/" {
		e.str(a, keyProtocolVersion, p[5:])
	}
	e.str(a, keyServerAddress, r.Get(al.Host))
	if st, ok := al.ParseInt(r.Get(al.Status)); ok {
		e.ints = append(e.ints, intAttr{keyStatus, st})
		e.class, e.sev = statusClass(st)
	}
	e.num(keyResponseBodySize, r.Get(al.BodyBytesSent))
	e.num(keyResponseSize, r.Get(al.BytesSent))
	e.num(keyRequestSize, r.Get(al.RequestLength))
	e.num(keyRequestBodySize, r.Get(al.RequestBodyLength))
	e.str(a, keyUserAgent, r.Get(al.UserAgent))
	e.str(a, keyReferer, r.Get(al.Referer))
	e.str(a, keyForwardedFor, r.Get(al.XForwardedFor))
	e.str(a, keyRequestID, r.Get(al.RequestID))
	if d, ok := duration(r.Get(al.RequestTimeSec), r.Get(al.RequestTimeMs), r.Get(al.RequestTimeNs)); ok {
		e.dbls = append(e.dbls, dblAttr{keyDuration, d})
		e.duration = d
	}

	e.str(a, keyUpstreamName, r.Get(al.ProxyUpstreamName))
	e.str(a, keyUpstreamAltName, r.Get(al.ProxyAltUpstreamName))
	e.str(a, keyUpstreamAddress, r.Get(al.UpstreamAddr))
	if st, ok := al.ParseInt(al.Last(r.Get(al.UpstreamStatus))); ok {
		e.ints = append(e.ints, intAttr{keyUpstreamStatus, st})
	}
	if n, ok := al.ParseInt(al.Last(r.Get(al.UpstreamResponseLength))); ok {
		e.ints = append(e.ints, intAttr{keyUpstreamSize, n})
	}
	if d, ok := al.SumDecimal(r.Get(al.UpstreamTimeSec)); ok {
		e.dbls = append(e.dbls, dblAttr{keyUpstreamDuration, d})
	} else if ms, ok := al.ParseDecimal(r.Get(al.UpstreamTimeMs)); ok {
		e.dbls = append(e.dbls, dblAttr{keyUpstreamDuration, ms / 1e3})
	}

	ns, svc, port := r.Get(al.Namespace), r.Get(al.ServiceName), r.Get(al.ServicePort)
	upstream := r.Get(al.ProxyUpstreamName)
	if upstream == nil {
		upstream = r.Get(al.UpstreamService)
	}
	if ns == nil && svc == nil && upstream != nil {
		if b, ok := splitUpstream(upstream, m.namespaces); ok {
			ns, svc, port = b.namespace, b.service, b.port
		}
	}
	e.ns = e.str(a, keyNamespace, ns)
	e.svc = e.str(a, keyService, svc)
	e.str(a, keyServicePort, port)
	e.ingress = e.str(a, keyIngress, r.Get(al.IngressName))
	e.str(a, keyRouter, r.Get(al.Router))
	e.str(a, keyResponseFlags, r.Get(al.ResponseFlags))

	switch {
	case r.Get(al.TimeLocal) != nil:
		e.ts = unixNano(al.ParseTimeLocal(r.Get(al.TimeLocal)))
	case r.Get(al.TimeISO8601) != nil:
		e.ts = unixNano(al.ParseISO8601(r.Get(al.TimeISO8601)))
	case r.Get(al.TimeMsec) != nil:
		e.ts = unixNano(al.ParseMsec(r.Get(al.TimeMsec)))
	}
}

// mapBad fills e for a line that did not parse: the line and why.
func (m *mapper) mapBad(e *entry, line []byte, reason string) {
	e.bad = true
	e.sev = int32(plog.SeverityNumberWarn)
	e.str(&m.arena, keyOriginal, line)
	// Rules judge the whole line, decoded as a target is: an attack in a
	// line that does not fit the format is still an attack.
	e.str(&m.arena, keyNormalized, m.norm.Text(line))
	e.strs = append(e.strs, strAttr{key: keyParseError, v: m.arena.add([]byte(reason))})
}

// normalize adds the decoded target (k8ssec.url.normalized) and the
// resolved path (k8ssec.url.path.normalized), computed once here for every
// rule (internal/httpnorm); a request line nginx could not split is decoded
// whole.
func (m *mapper) normalize(e *entry) {
	r := &m.rec
	path, query := r.Get(al.Path), r.Get(al.Query)
	if path == nil && query == nil {
		if req := r.Get(al.Request); req != nil {
			e.str(&m.arena, keyNormalized, m.norm.Text(req))
		}
		return
	}
	m.target = append(m.target[:0], path...)
	if query != nil {
		m.target = append(m.target, '?')
		m.target = append(m.target, query...)
	}
	full, resolved := m.norm.Target(m.target)
	e.str(&m.arena, keyNormalized, full)
	e.str(&m.arena, keyPathNormalized, resolved)
}

// splitRequest splits "METHOD target PROTOCOL"; a request line nginx could
// not read (a TLS handshake on a plain port) keeps no method or path.
func splitRequest(r *al.Record, req []byte) {
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 {
		return
	}
	target := req[sp+1:]
	if end := bytes.LastIndexByte(target, ' '); end >= 0 && bytes.HasPrefix(target[end+1:], []byte("HTTP/")) {
		if !r.Has(al.Protocol) {
			r.Put(al.Protocol, target[end+1:])
		}
		target = target[:end]
	}
	if !r.Has(al.Method) {
		r.Put(al.Method, req[:sp])
	}
	if !r.Has(al.RequestURI) && len(target) > 0 {
		r.Put(al.RequestURI, target)
	}
}

func duration(sec, ms, ns []byte) (float64, bool) {
	if d, ok := al.ParseDecimal(sec); ok {
		return d, true
	}
	if d, ok := al.ParseDecimal(ms); ok {
		return d / 1e3, true
	}
	if d, ok := al.ParseInt(ns); ok {
		return float64(d) / 1e9, true
	}
	return 0, false
}

// classNames are the status classes of the metrics, by entry.class: the
// hundreds digit of the code, 0 when there is no code in 100-599.
var classNames = [...]string{statusClassUnknown, "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int64) (uint8, int32) {
	switch {
	case code >= 500 && code < 600:
		return 5, int32(plog.SeverityNumberError)
	case code >= 400 && code < 500:
		return 4, int32(plog.SeverityNumberWarn)
	case code >= 100 && code < 400:
		return uint8(code / 100), int32(plog.SeverityNumberInfo)
	}
	return 0, int32(plog.SeverityNumberInfo)
}

// methodNames bound the method dimension of the metrics, as the semantic
// conventions advise, by entry.method: 0 is any other method, or none; the
// record keeps whatever the client sent.
var methodNames = [...]string{methodOther, "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func knownMethod(m []byte) uint8 {
	for i, k := range methodNames[1:] {
		if string(m) == k {
			return uint8(i + 1)
		}
	}
	return 0
}

func unixNano(t time.Time, ok bool) int64 {
	if !ok {
		return 0
	}
	return t.UnixNano()
}

// str adds a string attribute unless v is absent and returns its span.
func (e *entry) str(a *arena, key attrKey, v []byte) span {
	if v == nil {
		return span{}
	}
	s := a.add(v)
	e.strs = append(e.strs, strAttr{key, s})
	return s
}

// num adds an integer attribute when v is a number.
func (e *entry) num(key attrKey, v []byte) {
	if n, ok := al.ParseInt(v); ok {
		e.ints = append(e.ints, intAttr{key, n})
	}
}

// toRecord writes e into lr; strs is the batch's arena as one string.
func (e *entry) toRecord(lr plog.LogRecord, strs string, observed pcommon.Timestamp) {
	lr.SetEventName(eventName)
	lr.SetObservedTimestamp(observed)
	if e.ts != 0 {
		lr.SetTimestamp(pcommon.Timestamp(e.ts))
	}
	lr.SetSeverityNumber(plog.SeverityNumber(e.sev))
	attrs := lr.Attributes()
	attrs.EnsureCapacity(len(e.strs) + len(e.ints) + len(e.dbls))
	for _, s := range e.strs {
		attrs.PutStr(attrKeys[s.key], s.v.in(strs))
	}
	for _, n := range e.ints {
		attrs.PutInt(attrKeys[n.key], n.v)
	}
	for _, d := range e.dbls {
		attrs.PutDouble(attrKeys[d.key], d.v)
	}
}
