package accesslog

import (
	"bytes"
	"testing"
)

// FuzzParse runs every format on arbitrary lines: no panic, and every value a
// parser returns lies inside the line (text formats are zero-copy) or is
// no longer than the line (JSON unescaping only shrinks), so memory stays
// bounded by the input.
func FuzzParse(f *testing.F) {
	for _, tc := range formatCases {
		f.Add([]byte(tc.line))
	}
	f.Add([]byte(`1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1 "-" "-" 1 1 [a] [] 1, 2 : 3 1 1 1 x`))
	f.Add([]byte(`{"status":"\u0000","remote_addr":1e99999}`))
	var parsers []Parser
	for _, name := range Formats() {
		p, err := New(name, `$host$request_uri "$request" $upstream_addr [$time_local] ${status}x`)
		if err != nil {
			f.Fatal(name, err)
		}
		parsers = append(parsers, p)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, p := range parsers {
			var r Record
			if p.Parse(line, &r) != nil {
				continue
			}
			_, json := p.(*JSONParser)
			json = json || (len(line) > 0 && line[0] == '{') // auto detection
			for field := range NumFields {
				v := r.Get(field)
				if v == nil {
					continue
				}
				if len(v) > len(line) {
					t.Fatalf("field %d is longer than the line", field)
				}
				if !json && !bytes.Contains(line, v) {
					t.Fatalf("field %d %q is not from the line", field, v)
				}
			}
		}
	})
}
