package ingresslogreceiver

// An entry is one line's record before it becomes pdata: string values as
// spans of the batch's arena (one string for the whole batch), numbers typed.
type entry struct {
	strs []strAttr
	ints []intAttr
	dbls []dblAttr
	ts   int64 // Unix nanoseconds, 0 when the line has no time
	sev  int32 // plog.SeverityNumber
	bad  bool
	// RED metric dimensions, spans of the arena; duration < 0 when absent.
	ns, svc, ingress span
	method           string // a known method or _OTHER, never from the arena
	class            string
	duration         float64
}

type span struct{ off, n uint32 }

type strAttr struct {
	key string
	v   span
}

type intAttr struct {
	key string
	v   int64
}

type dblAttr struct {
	key string
	v   float64
}

func (e *entry) reset() {
	*e = entry{strs: e.strs[:0], ints: e.ints[:0], dbls: e.dbls[:0], duration: -1}
}

// arena collects the string values of a batch.
type arena struct{ b []byte }

func (a *arena) add(v []byte) span {
	s := span{off: uint32(len(a.b)), n: uint32(len(v))}
	a.b = append(a.b, v...)
	return s
}

func (s span) in(str string) string { return str[s.off : s.off+s.n] }
