package ebpfreceiver

// interner turns the byte strings events repeat most (comms, paths of files
// opened again and again, executables) into shared Go strings, so that an
// event does not allocate a copy of each. Bounded: when full it starts over.
// Only the reader goroutine uses it.
type interner struct {
	m   map[string]string
	max int
}

// newInterner's map grows as strings come: sized for max at once, it would hold
// 0.6 MB from the start on a quiet node.
func newInterner(max int) *interner { return &interner{m: map[string]string{}, max: max} }

func (in *interner) get(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // this lookup does not allocate
		return s
	}
	s := string(b)
	if len(in.m) >= in.max {
		clear(in.m)
	}
	in.m[s] = s
	return s
}

// internSize bounds the interner: about 0.5 MiB of typical paths.
const internSize = 8192
