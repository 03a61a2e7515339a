package accesslog

import (
	"bytes"
	"errors"
	"fmt"
)

// step is one variable of a compiled log_format and the literal text that
// follows it.
type step struct {
	field Field
	list  bool   // may hold ", " or " : " separated values
	next  []byte // literal after the value; empty: the value runs to the end
	until byte   // with no literal: the next value starts at this byte
	name  string // the variable, for errors
	err   error  // why a line fails here, built once
}

// TextParser parses lines written by one nginx log_format: literal text and
// variables, scanned left to right with no backtracking beyond a literal's
// first byte.
type TextParser struct {
	prefix    []byte
	prefixErr error
	steps     []step
}

var errStatus = errors.New("status is not a number")

// CompileNginx compiles an nginx log_format string ('$remote_addr - ...') into
// a parser. Quotes around the whole format, as in nginx.conf, are not part of
// it. Two variables with no literal between them cannot be told apart and are
// refused.
func CompileNginx(format string) (*TextParser, error) {
	p := &TextParser{}
	var lit []byte
	cur := -1 // the step whose trailing literal is being read
	flush := func() {
		if cur < 0 {
			p.prefix = append([]byte(nil), lit...)
			p.prefixErr = fmt.Errorf("line does not start with %q", lit)
		} else {
			s := &p.steps[cur]
			s.next = append([]byte(nil), lit...)
			s.err = fmt.Errorf("no %q after $%s", lit, s.name)
			if len(lit) == 0 {
				s.err = fmt.Errorf("no '/' after $%s", s.name)
			}
		}
		lit = lit[:0]
	}
	for i := 0; i < len(format); {
		c := format[i]
		if c != '$' {
			lit = append(lit, c)
			i++
			continue
		}
		name, n := varName(format[i+1:])
		if name == "" {
			lit = append(lit, c) // a lone '$' is literal, as in nginx
			i++
			continue
		}
		f := nginxVariables[name]
		if cur >= 0 && len(lit) == 0 {
			// $host$request_uri: a path always starts with '/'.
			if f != RequestURI && f != Path {
				return nil, fmt.Errorf("log_format: $%s follows $%s with nothing between them", name, p.steps[cur].name)
			}
			p.steps[cur].until = '/'
		}
		flush()
		p.steps = append(p.steps, step{field: f, name: name, list: listField(f)})
		cur = len(p.steps) - 1
		i += 1 + n
	}
	flush()
	if len(p.steps) == 0 {
		return nil, errors.New("log_format has no variables")
	}
	return p, nil
}

// varName reads a variable name after '$': name or {name}.
func varName(s string) (string, int) {
	if len(s) > 0 && s[0] == '{' {
		end := 1
		for end < len(s) && s[end] != '}' {
			end++
		}
		if end == len(s) || end == 1 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n], n
}

// Parse implements Parser.
func (p *TextParser) Parse(line []byte, r *Record) error {
	r.Reset()
	if !bytes.HasPrefix(line, p.prefix) {
		return p.prefixErr
	}
	pos := len(p.prefix)
	for i := range p.steps {
		s := &p.steps[i]
		if s.until != 0 {
			end := bytes.IndexByte(line[pos:], s.until)
			if end < 0 {
				return s.err
			}
			r.set(s.field, line[pos:pos+end])
			pos += end
			continue
		}
		if i == len(p.steps)-1 {
			// The last value runs to the format's closing literal at the
			// very end of the line, whatever the value holds.
			if !bytes.HasSuffix(line[pos:], s.next) {
				return s.err
			}
			r.set(s.field, line[pos:len(line)-len(s.next)])
			break
		}
		end := indexLiteral(line, pos, s.next)
		for s.list && end > 0 {
			// "a, b" split at its space, or "a : b": the list goes on.
			if line[end-1] == ',' {
				end = indexLiteral(line, end+1, s.next)
			} else if bytes.HasPrefix(line[end:], listColon) {
				end = indexLiteral(line, end+len(listColon), s.next)
			} else {
				break
			}
		}
		if end < 0 {
			if i == len(p.steps)-2 && isSpaces(s.next) {
				// The last variable was empty (a request id nginx did not
				// set) and the line's trailing space was trimmed: the line
				// is whole without it.
				r.set(s.field, bytes.TrimRight(line[pos:], " "))
				break
			}
			return s.err
		}
		r.set(s.field, line[pos:end])
		pos = end + len(s.next)
	}
	if v := r.Get(Status); v != nil && !isDigits(v) {
		return errStatus
	}
	return nil
}

var listColon = []byte(" : ")

// indexLiteral finds lit in line at or after from, -1 if absent: IndexByte
// for its first byte, then a compare.
func indexLiteral(line []byte, from int, lit []byte) int {
	for from <= len(line) {
		i := bytes.IndexByte(line[from:], lit[0])
		if i < 0 {
			return -1
		}
		at := from + i
		if bytes.HasPrefix(line[at:], lit) {
			return at
		}
		from = at + 1
	}
	return -1
}

func isSpaces(b []byte) bool {
	for _, c := range b {
		if c != ' ' {
			return false
		}
	}
	return len(b) > 0
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
