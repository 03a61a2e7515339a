package accesslog

import (
	"bytes"
	"time"
)

// ParseInt reads a non-negative decimal integer; ok is false for anything
// else, or one that overflows.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ParseDecimal reads a non-negative decimal with an optional fraction
// ("0.004", "12") without strconv's allocation on error.
func ParseDecimal(b []byte) (float64, bool) {
	dot := bytes.IndexByte(b, '.')
	if dot < 0 {
		n, ok := ParseInt(b)
		return float64(n), ok
	}
	whole, ok := ParseInt(b[:dot])
	if !ok && dot > 0 {
		return 0, false
	}
	frac := b[dot+1:]
	if len(frac) > 9 {
		frac = frac[:9]
	}
	f, ok := ParseInt(frac)
	if !ok {
		return 0, false
	}
	return float64(whole) + float64(f)/pow10[len(frac)], true
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// Last returns the last of a list field's values ("a, b : c" -> "c"): the
// attempt that answered.
func Last(b []byte) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ' ' || b[i] == ',' {
			return b[i+1:]
		}
	}
	return b
}

// SumDecimal adds up a list field of decimals ("0.002, 0.004"); values that
// are not numbers ("-") count as zero.
func SumDecimal(b []byte) (float64, bool) {
	var sum float64
	any := false
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != ',' && b[i] != ' ' && b[i] != ':' {
			i++
		}
		if v, ok := ParseDecimal(b[:i]); ok {
			sum += v
			any = true
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return sum, any
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// ParseTimeLocal reads nginx's $time_local: 02/Jan/2006:15:04:05 -0700.
func ParseTimeLocal(b []byte) (time.Time, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return time.Time{}, false
	}
	mon := -1
	for i, m := range months {
		if string(b[3:6]) == m {
			mon = i
			break
		}
	}
	day, ok1 := ParseInt(b[0:2])
	year, ok2 := ParseInt(b[7:11])
	hh, ok3 := ParseInt(b[12:14])
	mm, ok4 := ParseInt(b[15:17])
	ss, ok5 := ParseInt(b[18:20])
	off, ok6 := parseOffset(b[21:26])
	if mon < 0 || !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	t := time.Date(int(year), time.Month(mon+1), int(day), int(hh), int(mm), int(ss), 0, time.UTC)
	return t.Add(-time.Duration(off) * time.Second), true
}

// parseOffset reads +hhmm, +hh:mm or Z as seconds east of UTC.
func parseOffset(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == 'Z' {
		return 0, true
	}
	if len(b) == 6 && b[3] == ':' {
		b = []byte{b[0], b[1], b[2], b[4], b[5]}
	}
	if len(b) != 5 || (b[0] != '+' && b[0] != '-') {
		return 0, false
	}
	h, ok1 := ParseInt(b[1:3])
	m, ok2 := ParseInt(b[3:5])
	if !ok1 || !ok2 {
		return 0, false
	}
	s := h*3600 + m*60
	if b[0] == '-' {
		s = -s
	}
	return s, true
}

// ParseISO8601 reads 2006-01-02T15:04:05[.fraction](Z|+hh:mm).
func ParseISO8601(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := ParseInt(b[0:4])
	mon, ok2 := ParseInt(b[5:7])
	day, ok3 := ParseInt(b[8:10])
	hh, ok4 := ParseInt(b[11:13])
	mm, ok5 := ParseInt(b[14:16])
	ss, ok6 := ParseInt(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mon < 1 || mon > 12 {
		return time.Time{}, false
	}
	rest := b[19:]
	var nanos int64
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		frac := rest[1:i]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, ok := ParseInt(frac)
		if !ok {
			return time.Time{}, false
		}
		nanos = f * int64(pow10[9-len(frac)])
		rest = rest[i:]
	}
	off, ok := parseOffset(rest)
	if !ok {
		return time.Time{}, false
	}
	t := time.Date(int(year), time.Month(mon), int(day), int(hh), int(mm), int(ss), int(nanos), time.UTC)
	return t.Add(-time.Duration(off) * time.Second), true
}

// ParseMsec reads nginx's $msec: Unix seconds with a millisecond fraction.
func ParseMsec(b []byte) (time.Time, bool) {
	f, ok := ParseDecimal(b)
	if !ok {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
}
