package ingresslogreceiver

import (
	"bytes"
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	al "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
)

// mapper turns parsed lines into entries; it belongs to one decoder.
type mapper struct {
	trusted    []netip.Prefix
	namespaces [][]byte
	rec        al.Record
	arena      arena
}

// mapLine fills e from a parsed record.
func (m *mapper) mapLine(e *entry) {
	r := &m.rec
	v := &r.V
	a := &m.arena

	if req := v[al.Request]; req != nil {
		splitRequest(r, req)
	}
	if uri := v[al.RequestURI]; uri != nil && v[al.Path] == nil {
		if q := bytes.IndexByte(uri, '?'); q >= 0 {
			v[al.Path] = uri[:q]
			if v[al.Query] == nil && q+1 < len(uri) {
				v[al.Query] = uri[q+1:]
			}
		} else {
			v[al.Path] = uri
		}
	}

	peer := v[al.RemoteAddr]
	if peer == nil && v[al.RemoteAddrPort] != nil {
		peer = stripPort(v[al.RemoteAddrPort])
	}
	client, viaXFF := clientAddress(peer, v[al.XForwardedFor], m.trusted)
	e.str(a, attrClientAddress, client)
	if viaXFF && peer != nil {
		e.str(a, attrPeerAddress, peer)
	}
	e.str(a, attrUserName, v[al.RemoteUser])
	if method := v[al.Method]; method != nil {
		e.str(a, attrMethod, method)
		e.method = knownMethod(method)
	}
	e.str(a, attrPath, v[al.Path])
	e.str(a, attrQuery, v[al.Query])
	e.str(a, attrScheme, v[al.Scheme])
	if p := v[al.Protocol]; len(p) > 5 && string(p[:5]) == "HTTP/" {
		e.str(a, attrProtocolVersion, p[5:])
	}
	e.str(a, attrServerAddress, v[al.Host])
	e.class = statusClassUnknown
	if st, ok := al.ParseInt(v[al.Status]); ok {
		e.ints = append(e.ints, intAttr{attrStatus, st})
		e.class, e.sev = statusClass(st)
	}
	e.num(attrResponseBodySize, v[al.BodyBytesSent])
	e.num(attrResponseSize, v[al.BytesSent])
	e.num(attrRequestSize, v[al.RequestLength])
	e.num(attrRequestBodySize, v[al.RequestBodyLength])
	e.str(a, attrUserAgent, v[al.UserAgent])
	e.str(a, attrReferer, v[al.Referer])
	e.str(a, attrForwardedFor, v[al.XForwardedFor])
	e.str(a, attrRequestID, v[al.RequestID])
	if d, ok := duration(v[al.RequestTimeSec], v[al.RequestTimeMs], v[al.RequestTimeNs]); ok {
		e.dbls = append(e.dbls, dblAttr{attrDuration, d})
		e.duration = d
	}

	e.str(a, attrUpstreamName, v[al.ProxyUpstreamName])
	e.str(a, attrUpstreamAltName, v[al.ProxyAltUpstreamName])
	e.str(a, attrUpstreamAddress, v[al.UpstreamAddr])
	if st, ok := al.ParseInt(al.Last(v[al.UpstreamStatus])); ok {
		e.ints = append(e.ints, intAttr{attrUpstreamStatus, st})
	}
	if n, ok := al.ParseInt(al.Last(v[al.UpstreamResponseLength])); ok {
		e.ints = append(e.ints, intAttr{attrUpstreamSize, n})
	}
	if d, ok := al.SumDecimal(v[al.UpstreamTimeSec]); ok {
		e.dbls = append(e.dbls, dblAttr{attrUpstreamDuration, d})
	} else if ms, ok := al.ParseDecimal(v[al.UpstreamTimeMs]); ok {
		e.dbls = append(e.dbls, dblAttr{attrUpstreamDuration, ms / 1e3})
	}

	ns, svc, port := v[al.Namespace], v[al.ServiceName], v[al.ServicePort]
	upstream := v[al.ProxyUpstreamName]
	if upstream == nil {
		upstream = v[al.UpstreamService]
	}
	if ns == nil && svc == nil && upstream != nil {
		if b, ok := splitUpstream(upstream, m.namespaces); ok {
			ns, svc, port = b.namespace, b.service, b.port
		}
	}
	e.ns = e.str(a, attrNamespace, ns)
	e.svc = e.str(a, attrService, svc)
	e.str(a, attrServicePort, port)
	e.ingress = e.str(a, attrIngress, v[al.IngressName])
	e.str(a, attrRouter, v[al.Router])
	e.str(a, attrResponseFlags, v[al.ResponseFlags])

	switch {
	case v[al.TimeLocal] != nil:
		e.ts = unixNano(al.ParseTimeLocal(v[al.TimeLocal]))
	case v[al.TimeISO8601] != nil:
		e.ts = unixNano(al.ParseISO8601(v[al.TimeISO8601]))
	case v[al.TimeMsec] != nil:
		e.ts = unixNano(al.ParseMsec(v[al.TimeMsec]))
	}
}

// mapBad fills e for a line that did not parse: the line and why.
func (m *mapper) mapBad(e *entry, line []byte, reason string) {
	e.bad = true
	e.sev = int32(plog.SeverityNumberWarn)
	e.str(&m.arena, attrOriginal, line)
	e.strs = append(e.strs, strAttr{key: attrParseError, v: m.arena.add([]byte(reason))})
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
		if r.V[al.Protocol] == nil {
			r.V[al.Protocol] = target[end+1:]
		}
		target = target[:end]
	}
	if r.V[al.Method] == nil {
		r.V[al.Method] = req[:sp]
	}
	if r.V[al.RequestURI] == nil && len(target) > 0 {
		r.V[al.RequestURI] = target
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

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int64) (string, int32) {
	switch {
	case code >= 500 && code < 600:
		return statusClasses[4], int32(plog.SeverityNumberError)
	case code >= 400 && code < 500:
		return statusClasses[3], int32(plog.SeverityNumberWarn)
	case code >= 100 && code < 400:
		return statusClasses[code/100-1], int32(plog.SeverityNumberInfo)
	}
	return statusClassUnknown, int32(plog.SeverityNumberInfo)
}

// knownMethods bounds the method dimension of the metrics, as the semantic
// conventions advise; the record keeps whatever the client sent.
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func knownMethod(m []byte) string {
	for _, k := range knownMethods {
		if string(m) == k {
			return k
		}
	}
	return methodOther
}

func unixNano(t time.Time, ok bool) int64 {
	if !ok {
		return 0
	}
	return t.UnixNano()
}

// str adds a string attribute unless v is absent and returns its span.
func (e *entry) str(a *arena, key string, v []byte) span {
	if v == nil {
		return span{}
	}
	s := a.add(v)
	e.strs = append(e.strs, strAttr{key, s})
	return s
}

// num adds an integer attribute when v is a number.
func (e *entry) num(key string, v []byte) {
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
		attrs.PutStr(s.key, s.v.in(strs))
	}
	for _, n := range e.ints {
		attrs.PutInt(n.key, n.v)
	}
	for _, d := range e.dbls {
		attrs.PutDouble(d.key, d.v)
	}
}
