package ingresslogreceiver

import (
	"bytes"
	"errors"

	"github.com/valyala/fastjson"
)

// maxPartial bounds a line reassembled from partial pieces; a longer one is
// passed on as it is when the limit is reached.
const maxPartial = 1 << 20

var errDockerLine = errors.New("not a Docker json-file line")

// unwrapper takes the container runtime's framing off a line. It holds the
// piece of a line split by the runtime (CRI "P", Docker's lines without a
// final newline) until the rest arrives; one unwrapper serves one file's
// batch at a time.
type unwrapper struct {
	mode    string
	json    fastjson.Parser
	partial []byte // pieces waiting for their final one
	scratch []byte
}

// unwrap returns the access log line a runtime line carries; complete is
// false while the line is still in pieces.
func (u *unwrapper) unwrap(line []byte) (msg []byte, complete bool, err error) {
	switch u.mode {
	case containerNone:
		return line, true, nil
	case containerCRI:
		return u.cri(line)
	case containerDocker:
		return u.docker(line)
	}
	if bytes.HasPrefix(line, []byte(`{"log":`)) {
		return u.docker(line)
	}
	if looksCRI(line) {
		return u.cri(line)
	}
	return line, true, nil
}

var errCRILine = errors.New("not a CRI log line")

// cri reads "<RFC3339Nano time> <stdout|stderr> <P|F>[:tags] <line>".
func (u *unwrapper) cri(line []byte) ([]byte, bool, error) {
	rest := line
	for range 2 {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			return nil, false, errCRILine
		}
		rest = rest[i+1:]
	}
	i := bytes.IndexByte(rest, ' ')
	if i < 1 {
		return nil, false, errCRILine
	}
	tag, msg := rest[:i], rest[i+1:]
	return u.piece(msg, tag[0] == 'F')
}

// looksCRI checks the time and stream fields: "2026-11-29T... stdout ".
func looksCRI(line []byte) bool {
	if len(line) < 32 || line[4] != '-' || line[10] != 'T' {
		return false
	}
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		return false
	}
	s := line[i+1:]
	return bytes.HasPrefix(s, []byte("stdout ")) || bytes.HasPrefix(s, []byte("stderr "))
}

func (u *unwrapper) docker(line []byte) ([]byte, bool, error) {
	v, err := u.json.ParseBytes(line)
	if err != nil {
		return nil, false, errDockerLine
	}
	lv := v.Get("log")
	if lv == nil || lv.Type() != fastjson.TypeString {
		return nil, false, errDockerLine
	}
	msg := lv.GetStringBytes()
	// json-file ends a complete line with its newline and splits longer
	// ones into 16 KiB pieces without.
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		return u.piece(msg[:n-1], true)
	}
	return u.piece(msg, false)
}

// piece adds a piece of a line; the line is complete with its final piece.
func (u *unwrapper) piece(msg []byte, final bool) ([]byte, bool, error) {
	if !final && len(u.partial)+len(msg) < maxPartial {
		u.partial = append(u.partial, msg...)
		return nil, false, nil
	}
	if len(u.partial) == 0 {
		return msg, true, nil
	}
	u.scratch = append(append(u.scratch[:0], u.partial...), msg...)
	u.partial = u.partial[:0]
	return u.scratch, true, nil
}
