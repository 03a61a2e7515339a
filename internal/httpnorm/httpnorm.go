// Package httpnorm is the one normalization of an HTTP request target that
// every ingress rule reads: a receiver computes it once per request and puts
// it on the record (k8ssec.url.normalized, k8ssec.url.path.normalized), so
// that no rule decodes on its own, differently from the next one.
//
// What it undoes is what attackers use to slip past filters that decode
// once, or not at all:
//   - nginx's log escaping (\xHH for '"', '\' and bytes outside ASCII
//     printables), once: it is the log's, not the client's;
//   - percent-encoding, repeatedly (double and triple encoding), at most
//     MaxPasses times; IIS's %uXXXX; '+' as a space in the query, on the
//     first pass only (a later '+' was sent as %2B);
//   - overlong UTF-8 (%c0%af for '/', %c0%ae for '.'), folded to ASCII;
//   - numeric HTML character references (&#60; &#x3c;), once at the end;
//   - backslashes, as slashes (IIS and Windows backends treat them so);
//   - case: ASCII is lowercased.
//
// Path returns the path alone with its dot segments resolved (RFC 3986
// section 5.2.4, with Tomcat's "..;x" counted as ".." and repeated slashes
// merged as nginx merges them): the resource the request names, for rules
// about what is asked for rather than how.
package httpnorm

import "bytes"

// MaxPasses bounds the percent-decoding passes: three layers of encoding
// are decoded, a fourth is left.
const MaxPasses = 3

// Normalizer keeps scratch buffers between calls; one serves one goroutine.
type Normalizer struct {
	a, b, path []byte
}

// Target normalizes a request target (path, '?', query) and returns the
// decoded target and the decoded, dot-resolved path. Both stay valid until
// the next call.
func (n *Normalizer) Target(target []byte) (full, path []byte) {
	n.a = unescapeNginx(n.a[:0], target)
	q := bytes.IndexByte(n.a, '?')
	var rawPath, rawQuery []byte
	if q < 0 {
		rawPath = n.a
	} else {
		rawPath, rawQuery = n.a[:q], n.a[q+1:]
	}
	n.b = decode(n.b[:0], rawPath, false)
	pathEnd := len(n.b)
	if q >= 0 {
		n.b = append(n.b, '?')
		n.b = decode(n.b, rawQuery, true)
	}
	n.path = resolveDots(n.path[:0], n.b[:pathEnd])
	return n.b, n.path
}

// Text normalizes text that is not known to be a target (a request line
// nginx could not split, a log line that did not parse): decoded as a query.
func (n *Normalizer) Text(s []byte) []byte {
	n.a = unescapeNginx(n.a[:0], s)
	n.b = decode(n.b[:0], n.a, true)
	return n.b
}

// decode appends src decoded (percent passes, overlong UTF-8, HTML
// references, backslashes, case) to dst.
func decode(dst, src []byte, query bool) []byte {
	start := len(dst)
	dst = append(dst, src...)
	var tmp [512]byte
	for pass := 0; pass < MaxPasses; pass++ {
		cur := dst[start:]
		if !needsDecode(cur, query && pass == 0) {
			break
		}
		// Decoding only shrinks: decode into a copy, then back in place.
		buf := append(tmp[:0], cur...)
		dst = percentDecode(dst[:start], buf, query && pass == 0)
		dst = foldOverlong(dst, start)
	}
	dst = foldOverlong(dst, start)
	dst = htmlRefs(dst, start)
	for i := start; i < len(dst); i++ {
		c := dst[i]
		switch {
		case c == '\\':
			dst[i] = '/'
		case c >= 'A' && c <= 'Z':
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst
}

func needsDecode(s []byte, plus bool) bool {
	for _, c := range s {
		if c == '%' || plus && c == '+' {
			return true
		}
	}
	return false
}

// percentDecode appends src with %XX and %uXXXX decoded (and '+' as a space
// when plus); a '%' that starts no valid escape stays as it is.
func percentDecode(dst, src []byte, plus bool) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '+' && plus:
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]):
			dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
		case c == '%' && i+5 < len(src) && (src[i+1] == 'u' || src[i+1] == 'U') &&
			isHex(src[i+2]) && isHex(src[i+3]) && isHex(src[i+4]) && isHex(src[i+5]):
			r := rune(unhex(src[i+2]))<<12 | rune(unhex(src[i+3]))<<8 | rune(unhex(src[i+4]))<<4 | rune(unhex(src[i+5]))
			dst = appendRune(dst, r)
			i += 5
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// foldOverlong rewrites, from start on, overlong two- and three-byte UTF-8
// encodings of ASCII (C0 AF, E0 80 AF) as the ASCII byte they spell.
func foldOverlong(b []byte, start int) []byte {
	if bytes.IndexByte(b[start:], 0xc0) < 0 && bytes.IndexByte(b[start:], 0xc1) < 0 && bytes.IndexByte(b[start:], 0xe0) < 0 {
		return b
	}
	w := start
	for i := start; i < len(b); i++ {
		c := b[i]
		if (c == 0xc0 || c == 0xc1) && i+1 < len(b) && b[i+1]&0xc0 == 0x80 {
			b[w] = (c&0x1f)<<6 | b[i+1]&0x3f
			w++
			i++
			continue
		}
		if c == 0xe0 && i+2 < len(b) && b[i+1]&0xe0 == 0x80 && b[i+2]&0xc0 == 0x80 && b[i+1]&0x1f <= 1 {
			b[w] = (b[i+1]&0x3f)<<6 | b[i+2]&0x3f
			w++
			i += 2
			continue
		}
		b[w] = c
		w++
	}
	return b[:w]
}

// htmlRefs rewrites numeric character references of ASCII (&#60; &#x3C;,
// the ';' optional) from start on.
func htmlRefs(b []byte, start int) []byte {
	if !bytes.Contains(b[start:], htmlRef) {
		return b
	}
	w := start
	for i := start; i < len(b); i++ {
		if b[i] == '&' && i+2 < len(b) && b[i+1] == '#' {
			j, v, hex := i+2, 0, false
			if b[j] == 'x' || b[j] == 'X' {
				hex = true
				j++
			}
			digits := 0
			for j < len(b) && digits < 7 {
				c := b[j]
				switch {
				case c >= '0' && c <= '9':
					v = v*base(hex) + int(c-'0')
				case hex && isHex(c):
					v = v*16 + int(unhex(c))
				default:
					goto done
				}
				j++
				digits++
			}
		done:
			if digits > 0 && v > 0 && v < 0x80 {
				if j < len(b) && b[j] == ';' {
					j++
				}
				b[w] = byte(v)
				w++
				i = j - 1
				continue
			}
		}
		b[w] = b[i]
		w++
	}
	return b[:w]
}

var htmlRef = []byte("&#")

func base(hex bool) int {
	if hex {
		return 16
	}
	return 10
}

// unescapeNginx appends src with nginx's \xHH escapes undone.
func unescapeNginx(dst, src []byte) []byte {
	if bytes.IndexByte(src, '\\') < 0 {
		return append(dst, src...)
	}
	for i := 0; i < len(src); i++ {
		if src[i] == '\\' && i+3 < len(src) && src[i+1] == 'x' && isHex(src[i+2]) && isHex(src[i+3]) {
			dst = append(dst, unhex(src[i+2])<<4|unhex(src[i+3]))
			i += 3
			continue
		}
		dst = append(dst, src[i])
	}
	return dst
}

// resolveDots appends path with repeated slashes merged and dot segments
// removed; ".." above the root stays at the root, as nginx keeps it.
func resolveDots(dst, path []byte) []byte {
	start := len(dst)
	dirEnd := false // the result names a directory: it ends with '/'
	for i := 0; i < len(path); {
		if path[i] == '/' {
			i++
			continue
		}
		j := i
		for j < len(path) && path[j] != '/' {
			j++
		}
		seg := path[i:j]
		i = j
		switch {
		case string(seg) == ".":
			dirEnd = true
		case string(seg) == ".." || len(seg) > 2 && string(seg[:3]) == "..;":
			for len(dst) > start && dst[len(dst)-1] != '/' {
				dst = dst[:len(dst)-1]
			}
			if len(dst) > start {
				dst = dst[:len(dst)-1]
			}
			dirEnd = true
		default:
			dst = append(dst, '/')
			dst = append(dst, seg...)
			dirEnd = false
		}
	}
	if dirEnd || len(path) > 0 && path[len(path)-1] == '/' || len(dst) == start {
		dst = append(dst, '/')
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendRune appends r as UTF-8 (ASCII as itself).
func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xc0|byte(r>>6), 0x80|byte(r)&0x3f)
	}
	return append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
}
