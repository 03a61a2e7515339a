package rules

import (
	"net/netip"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// helperFunctions are what a rule author needs beyond CEL's own string and
// list functions (rules/README.md lists them).
func helperFunctions() []cel.EnvOption {
	// List parameters are dyn: for a declared list type CEL checks the type of
	// every element at every call, which costs more than the helper itself.
	// The helpers take lists and skip elements that are not strings.
	str, list := cel.StringType, cel.DynType
	binary := func(name string, a, b, result *cel.Type, f func(ref.Val, ref.Val) ref.Val) cel.EnvOption {
		return cel.Function(name, cel.Overload(name+"_"+a.String()+"_"+b.String(), []*cel.Type{a, b}, result, cel.BinaryBinding(f)))
	}
	return []cel.EnvOption{
		binary("glob", str, str, cel.BoolType, stringPair(func(s, p string) bool { return glob(s, p) })),
		binary("glob_any", str, list, cel.BoolType, stringAny(glob)),
		binary("starts_with_any", str, list, cel.BoolType, stringAny(strings.HasPrefix)),
		binary("ends_with_any", str, list, cel.BoolType, stringAny(strings.HasSuffix)),
		binary("icontains", str, str, cel.BoolType, stringPair(icontains)),
		binary("icontains_any", str, list, cel.BoolType, stringAny(icontains)),
		binary("in_cidr", str, list, cel.BoolType, stringAny(inCIDR)),
		binary("has_any", list, list, cel.BoolType, hasAny),
		cel.Function("url_decode", cel.Overload("url_decode_string", []*cel.Type{str}, str,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				return types.String(urlDecode(string(s)))
			}))),
	}
}

func stringPair(f func(a, b string) bool) func(ref.Val, ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		sa, ok1 := a.(types.String)
		sb, ok2 := b.(types.String)
		if !ok1 || !ok2 {
			return types.MaybeNoSuchOverloadErr(a)
		}
		return types.Bool(f(string(sa), string(sb)))
	}
}

// stringAny is f(s, item) for any item of a list of strings.
func stringAny(f func(s, item string) bool) func(ref.Val, ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		s, ok := a.(types.String)
		l, ok2 := b.(traits.Lister)
		if !ok || !ok2 {
			return types.MaybeNoSuchOverloadErr(a)
		}
		it := l.Iterator()
		for it.HasNext() == types.True {
			if item, ok := it.Next().(types.String); ok && f(string(s), string(item)) {
				return types.True
			}
		}
		return types.False
	}
}

// hasAny reports whether any element of a is in b: "any of the user's groups
// is a cluster-admin group", without a comprehension.
func hasAny(a, b ref.Val) ref.Val {
	lb, ok := b.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(b)
	}
	if ps, ok := a.(pslice); ok { // an attribute: no iterator to allocate
		for i := 0; i < ps.s.Len(); i++ {
			if lb.Contains(valueOf(ps.s.At(i))) == types.True {
				return types.True
			}
		}
		return types.False
	}
	la, ok := a.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(a)
	}
	it := la.Iterator()
	for it.HasNext() == types.True {
		if lb.Contains(it.Next()) == types.True {
			return types.True
		}
	}
	return types.False
}

// glob is a shell glob in which * does not cross '/'; a malformed pattern
// matches nothing.
func glob(s, pattern string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}

// icontains is a case-insensitive strings.Contains without allocating.
func icontains(s, sub string) bool {
	if len(sub) == 0 {
		return true
	}
	if c := sub[0]; c < utf8.RuneSelf {
		lo, up := c, c
		if 'A' <= c && c <= 'Z' {
			lo = c + 'a' - 'A'
		} else if 'a' <= c && c <= 'z' {
			up = c - ('a' - 'A')
		}
		if lo != 'k' && lo != 's' {
			// No other rune folds to this ASCII byte (K and ſ fold to k
			// and s): jump from one occurrence of either case to the next.
			for i := 0; i+len(sub) <= len(s); i++ {
				j := indexEither(s[i:len(s)-len(sub)+1], lo, up)
				if j < 0 {
					return false
				}
				i += j
				if strings.EqualFold(s[i:i+len(sub)], sub) {
					return true
				}
			}
			return false
		}
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// indexEither is the first index of a or b in s, -1 if neither.
func indexEither(s string, a, b byte) int {
	i := strings.IndexByte(s, a)
	if a == b {
		return i
	}
	if j := strings.IndexByte(s, b); j >= 0 && (i < 0 || j < i) {
		return j
	}
	return i
}

func inCIDR(ip, cidr string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	return prefix.Contains(addr.Unmap())
}

// urlDecode percent-decodes s once; '+' stays '+', as in paths. Invalid
// escapes are kept as they are, so an attack cannot hide behind a bad one.
func urlDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if d, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(d)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
