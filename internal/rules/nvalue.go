package rules

import (
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The values native evaluation (native.go) computes with: a small tagged
// struct instead of CEL's ref.Val interfaces, so that reading an attribute or
// comparing two strings allocates nothing. Maps and lists from the event stay
// pdata values, read in place.

type nkind uint8

const (
	// nUndecided is an error, or anything native evaluation does not decide
	// exactly as CEL would: the condition is then evaluated by CEL.
	nUndecided nkind = iota
	// nStop is the cost limit reached: an evaluation error, no match.
	nStop
	nNull
	nBool
	nInt
	nUint
	nDouble
	nString
	nMap   // pv holds a pdata map
	nSlice // pv holds a pdata slice
	nList  // ptr and n are the elements (a literal, a conversion)
	nJoin  // ptr and n are lists to read one after the other (list + list)
	nSet   // a rule list: ptr is its *strSet
	nNone  // optional.none()
)

// It is kept small (56 bytes): every node of a condition returns one.
type nval struct {
	k   nkind
	opt bool // optional.of(this value)
	b   bool
	n   uint64 // int64, uint64 or float64 bits; a list's length
	s   string
	pv  pcommon.Value
	ptr unsafe.Pointer // see the kinds
}

// listOf is a list of vals (kind nList or nJoin), which must not change.
func listOf(k nkind, vals []nval) nval {
	if len(vals) == 0 {
		return nval{k: k}
	}
	return nval{k: k, n: uint64(len(vals)), ptr: unsafe.Pointer(&vals[0])}
}

func (v nval) elems() []nval { return unsafe.Slice((*nval)(v.ptr), v.n) }
func (v nval) set() *strSet  { return (*strSet)(v.ptr) }

// strSet is a rule list of strings, for membership in one map lookup.
type strSet struct {
	items []string
	has   map[string]struct{}
}

func newStrSet(items []string) *strSet {
	s := &strSet{items: items, has: make(map[string]struct{}, len(items))}
	for _, it := range items {
		s.has[it] = struct{}{}
	}
	return s
}

var (
	undecided = nval{k: nUndecided}
	nTrue     = nval{k: nBool, b: true}
	nFalse    = nval{k: nBool}
	nNoneVal  = nval{k: nNone}
	// emptyMapValue is what an absent map attribute reads as; never written.
	emptyMapValue = pcommon.NewValueMap()
)

func nBoolOf(b bool) nval        { return nval{k: nBool, b: b} }
func nIntOf(i int64) nval        { return nval{k: nInt, n: uint64(i)} }
func nDoubleOf(f float64) nval   { return nval{k: nDouble, n: math.Float64bits(f)} }
func nStringOf(s string) nval    { return nval{k: nString, s: s} }
func (v nval) int() int64        { return int64(v.n) }
func (v nval) double() float64   { return math.Float64frombits(v.n) }
func (v nval) decided() bool     { return v.k != nUndecided && v.k != nStop }
func (v nval) isList() bool      { return v.k == nSlice || v.k == nList || v.k == nJoin || v.k == nSet }
func (v nval) plain() nval       { v.opt = false; return v }
func optionalOf(v nval) nval     { v.opt = true; return v }
func stringList(s []string) nval { return nval{k: nSet, ptr: unsafe.Pointer(newStrSet(s))} }

// fromPdata presents one pdata value.
func fromPdata(v pcommon.Value) nval {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return nStringOf(v.Str())
	case pcommon.ValueTypeInt:
		return nIntOf(v.Int())
	case pcommon.ValueTypeDouble:
		return nDoubleOf(v.Double())
	case pcommon.ValueTypeBool:
		return nBoolOf(v.Bool())
	case pcommon.ValueTypeMap:
		return nval{k: nMap, pv: v}
	case pcommon.ValueTypeSlice:
		return nval{k: nSlice, pv: v}
	case pcommon.ValueTypeEmpty:
		return nval{k: nNull}
	}
	return undecided // bytes: CEL's
}

// length is the number of elements of a list value.
func (v nval) length() int {
	switch v.k {
	case nSlice:
		return v.pv.Slice().Len()
	case nList:
		return int(v.n)
	case nSet:
		return len(v.set().items)
	case nJoin:
		n := 0
		for _, part := range v.elems() {
			n += part.length()
		}
		return n
	}
	return 0
}

// at is element i of a list value.
func (v nval) at(i int) nval {
	switch v.k {
	case nSlice:
		return fromPdata(v.pv.Slice().At(i))
	case nList:
		return v.elems()[i]
	case nSet:
		return nStringOf(v.set().items[i])
	case nJoin:
		for _, part := range v.elems() {
			if n := part.length(); i >= n {
				i -= n
				continue
			}
			return part.at(i)
		}
	}
	return undecided
}

// equal is CEL's ==: values of different types are unequal, numbers compare
// across int, uint and double. ok is false where native evaluation leaves the
// answer to CEL (maps, lists, optionals).
func equal(a, b nval) (eq, ok bool) {
	if a.opt || b.opt || !a.decided() || !b.decided() {
		return false, false
	}
	if isNumber(a.k) && isNumber(b.k) {
		c, ok := compareNumbers(a, b)
		return c == 0 && ok, true // NaN is equal to nothing
	}
	if a.k != b.k {
		switch {
		case a.k == nSet || b.k == nSet, a.isList() && b.isList():
			return false, false
		}
		return false, true
	}
	switch a.k {
	case nString:
		return a.s == b.s, true
	case nBool:
		return a.b == b.b, true
	case nNull:
		return true, true
	}
	return false, false
}

func isNumber(k nkind) bool { return k == nInt || k == nUint || k == nDouble }

// compareNumbers orders two numbers of any numeric kinds; ok is false for NaN.
func compareNumbers(a, b nval) (int, bool) {
	if a.k == b.k && a.k != nDouble {
		if a.k == nInt {
			return cmp3(a.int() < b.int(), a.int() > b.int()), true
		}
		return cmp3(a.n < b.n, a.n > b.n), true
	}
	if a.k != nDouble && b.k != nDouble { // int against uint
		if a.k == nInt {
			if a.int() < 0 {
				return -1, true
			}
			return cmp3(uint64(a.int()) < b.n, uint64(a.int()) > b.n), true
		}
		c, ok := compareNumbers(b, a)
		return -c, ok
	}
	fa, fb := a.asFloat(), b.asFloat()
	if math.IsNaN(fa) || math.IsNaN(fb) {
		return 0, false
	}
	return cmp3(fa < fb, fa > fb), true
}

func (v nval) asFloat() float64 {
	switch v.k {
	case nInt:
		return float64(v.int())
	case nUint:
		return float64(v.n)
	}
	return v.double()
}

func cmp3(less, more bool) int {
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	return 0
}

// contains is CEL's `elem in list` (or `key in map`).
func contains(list, elem nval) (found, ok bool) {
	if list.opt || !elem.decided() || elem.opt {
		return false, false
	}
	switch list.k {
	case nSet:
		if elem.k != nString {
			return false, elem.k != nMap && !elem.isList()
		}
		_, found := list.set().has[elem.s]
		return found, true
	case nMap:
		if elem.k != nString {
			return false, false
		}
		_, found := list.pv.Map().Get(elem.s)
		return found, true
	case nSlice, nList, nJoin:
		for i, n := 0, list.length(); i < n; i++ {
			eq, ok := equal(list.at(i), elem)
			if !ok {
				return false, false
			}
			if eq {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

// size is CEL's size(): code points of a string, elements of a list or map.
func size(v nval) nval {
	switch {
	case v.opt:
		return undecided
	case v.k == nString:
		return nIntOf(int64(utf8.RuneCountInString(v.s)))
	case v.k == nMap:
		return nIntOf(int64(v.pv.Map().Len()))
	case v.isList():
		return nIntOf(int64(v.length()))
	}
	return undecided
}

// toString is CEL's string() of a scalar.
func toString(v nval) nval {
	switch {
	case v.opt:
		return undecided
	case v.k == nString:
		return v
	case v.k == nInt:
		return nStringOf(strconv.FormatInt(v.int(), 10))
	case v.k == nUint:
		return nStringOf(strconv.FormatUint(v.n, 10))
	case v.k == nBool:
		return nStringOf(strconv.FormatBool(v.b))
	}
	return undecided
}
