package ebpfreceiver

// interner turns the byte strings events repeat most (comms, paths of files
// opened again and again, executables) into shared Go strings, so that an
// event does not allocate a copy of each. Bounded: when full it starts over.
// Only the reader goroutine uses it.
type interner struct {
	m   map[string]string
	max int
}

func newInterner(max int) *interner { return &interner{m: make(map[string]string, max), max: max} }

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
