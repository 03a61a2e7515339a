package ingresslogreceiver

// An entry is one line's record before it becomes pdata: string values as
// spans of the batch's arena (one string for the whole batch), numbers typed.
// It holds no pointers but its slices', which are reused from batch to
// batch: filling it writes no pointer, so it costs no write barrier while
// the garbage collector marks, and the collector does not scan its
// attributes.
type entry struct {
	strs []strAttr
	ints []intAttr
	dbls []dblAttr
	ts   int64 // Unix nanoseconds, 0 when the line has no time
	sev  int32 // plog.SeverityNumber
	bad  bool
	// RED metric dimensions: spans of the arena, a method of methodNames
	// (0 when unknown or absent), a class of classNames; duration < 0 when
	// absent.
	method, class    uint8
	ns, svc, ingress span
	duration         float64
}

type span struct{ off, n uint32 }

// attrKey is an attribute name, an index of attrKeys.
type attrKey uint8

const (
	keyClientAddress attrKey = iota
	keyPeerAddress
	keyUserName
	keyMethod
	keyPath
	keyQuery
	keyScheme
	keyProtocolVersion
	keyServerAddress
	keyStatus
	keyResponseBodySize
	keyResponseSize
	keyRequestSize
	keyRequestBodySize
	keyUserAgent
	keyDuration
	keyReferer
	keyForwardedFor
	keyRequestID
	keyUpstreamName
	keyUpstreamAltName
	keyUpstreamAddress
	keyUpstreamStatus
	keyUpstreamDuration
	keyUpstreamSize
	keyNamespace
	keyService
	keyServicePort
	keyIngress
	keyRouter
	keyResponseFlags
	keyOriginal
	keyParseError
	keyNormalized
	keyPathNormalized
	numKeys
)

var attrKeys = [numKeys]string{
	keyClientAddress:    attrClientAddress,
	keyPeerAddress:      attrPeerAddress,
	keyUserName:         attrUserName,
	keyMethod:           attrMethod,
	keyPath:             attrPath,
	keyQuery:            attrQuery,
	keyScheme:           attrScheme,
	keyProtocolVersion:  attrProtocolVersion,
	keyServerAddress:    attrServerAddress,
	keyStatus:           attrStatus,
	keyResponseBodySize: attrResponseBodySize,
	keyResponseSize:     attrResponseSize,
	keyRequestSize:      attrRequestSize,
	keyRequestBodySize:  attrRequestBodySize,
	keyUserAgent:        attrUserAgent,
	keyDuration:         attrDuration,
	keyReferer:          attrReferer,
	keyForwardedFor:     attrForwardedFor,
	keyRequestID:        attrRequestID,
	keyUpstreamName:     attrUpstreamName,
	keyUpstreamAltName:  attrUpstreamAltName,
	keyUpstreamAddress:  attrUpstreamAddress,
	keyUpstreamStatus:   attrUpstreamStatus,
	keyUpstreamDuration: attrUpstreamDuration,
	keyUpstreamSize:     attrUpstreamSize,
	keyNamespace:        attrNamespace,
	keyService:          attrService,
	keyServicePort:      attrServicePort,
	keyIngress:          attrIngress,
	keyRouter:           attrRouter,
	keyResponseFlags:    attrResponseFlags,
	keyOriginal:         attrOriginal,
	keyParseError:       attrParseError,
	keyNormalized:       attrNormalized,
	keyPathNormalized:   attrPathNormalized,
}

func (k attrKey) String() string { return attrKeys[k] }

type strAttr struct {
	key attrKey
	v   span
}

type intAttr struct {
	key attrKey
	v   int64
}

type dblAttr struct {
	key attrKey
	v   float64
}

// reset empties e for another line. The slices are resliced in place, which
// stores no pointer.
func (e *entry) reset() {
	e.strs, e.ints, e.dbls = e.strs[:0], e.ints[:0], e.dbls[:0]
	e.ts, e.sev, e.bad = 0, 0, false
	e.method, e.class = 0, 0
	e.ns, e.svc, e.ingress = span{}, span{}, span{}
	e.duration = -1
}

// arena collects the string values of a batch.
type arena struct{ b []byte }

func (a *arena) add(v []byte) span {
	n := len(a.b)
	if cap(a.b)-n < len(v) {
		a.b = append(a.b, v...)
	} else {
		// Resliced in place: a.b = append(a.b, v...) would store the
		// pointer too, with a write barrier while the GC marks.
		a.b = a.b[:n+len(v)]
		copy(a.b[n:], v)
	}
	return span{off: uint32(n), n: uint32(len(v))}
}

func (s span) in(str string) string { return str[s.off : s.off+s.n] }
