package rules

import (
	"strconv"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Event is one log record as rules see it.
type Event struct {
	Name     string
	Severity string
	Body     pcommon.Value
	Attrs    pcommon.Map
	Resource pcommon.Map
	Time     time.Time
}

// EventFromRecord views a record and its resource as an Event, without copying.
func EventFromRecord(lr plog.LogRecord, resource pcommon.Map) Event {
	t := lr.Timestamp().AsTime()
	if lr.Timestamp() == 0 {
		t = lr.ObservedTimestamp().AsTime()
	}
	return Event{Name: lr.EventName(), Severity: lr.SeverityText(), Body: lr.Body(),
		Attrs: lr.Attributes(), Resource: resource, Time: t}
}

// lookup finds an attribute on the record, then on its resource.
func (e *Event) lookup(name string) (pcommon.Value, bool) {
	if v, ok := e.Attrs.Get(name); ok {
		return v, true
	}
	if e.Resource != (pcommon.Map{}) {
		return e.Resource.Get(name)
	}
	return pcommon.Value{}, false
}

// Zero values that absent attributes read as.
var (
	emptyList = types.DefaultTypeAdapter.NativeToValue([]string{})
	emptyMap  = types.DefaultTypeAdapter.NativeToValue(map[string]any{})
)

// activation resolves a condition's names for one event: attributes (read
// lazily, converted once), lists, and macros (evaluated at most once per event).
type activation struct {
	set *Set
	ev  *Event
	// Values read for the current event, by attribute slot.
	// A slot belongs to the current event only when its gen matches: bumping
	// gen forgets them all without rewriting (and write-barriering) the slices.
	gen        uint32
	attrs      []slot
	candidates []*Rule   // scratch for the index
	found      [][]*Rule // scratch for the index
}

type slot struct {
	gen uint32
	val ref.Val
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) reset(set *Set, ev *Event) {
	if a.set != set || a.gen == ^uint32(0) {
		a.attrs = make([]slot, set.attrs)
		a.gen = 0
	}
	a.set, a.ev = set, ev
	a.gen++
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	r, ok := a.set.names[name]
	if !ok {
		return nil, false
	}
	switch r.kind {
	case nameList:
		return a.set.lists[r.index], true
	default:
		if s := &a.attrs[r.index]; s.gen == a.gen {
			return s.val, true
		}
		v := a.attr(name, r.typ)
		a.attrs[r.index] = slot{a.gen, v}
		return v, true
	}
}

// attr reads an attribute as the type rules declare for it; absent or of
// another shape, it reads as that type's zero value.
func (a *activation) attr(name string, t attrType) ref.Val {
	switch name {
	case "event.name":
		return types.String(a.ev.Name)
	case "event.severity":
		return types.String(a.ev.Severity)
	case "event.body":
		if a.ev.Body == (pcommon.Value{}) {
			return types.String("")
		}
		return types.String(a.ev.Body.AsString())
	}
	v, ok := a.ev.lookup(name)
	switch t {
	case typeString:
		if !ok {
			return types.String("")
		}
		if v.Type() == pcommon.ValueTypeStr {
			return types.String(v.Str())
		}
		return types.String(v.AsString())
	case typeInt:
		if !ok {
			return types.IntZero
		}
		switch v.Type() {
		case pcommon.ValueTypeInt:
			return types.Int(v.Int())
		case pcommon.ValueTypeDouble:
			return types.Int(int64(v.Double()))
		case pcommon.ValueTypeStr:
			n, _ := strconv.ParseInt(v.Str(), 10, 64)
			return types.Int(n)
		}
		return types.IntZero
	case typeDouble:
		if ok && v.Type() == pcommon.ValueTypeDouble {
			return types.Double(v.Double())
		}
		if ok && v.Type() == pcommon.ValueTypeInt {
			return types.Double(float64(v.Int()))
		}
		return types.Double(0)
	case typeBool:
		return types.Bool(ok && v.Type() == pcommon.ValueTypeBool && v.Bool())
	}
	// Lists and maps are read in place (pvalue.go).
	switch {
	case !ok:
	case t == typeMap && v.Type() == pcommon.ValueTypeMap:
		return pmap{v.Map()}
	case t == typeMap && v.Type() == pcommon.ValueTypeSlice:
		// A JSON patch request object is a list: offer it under "items".
		return types.DefaultTypeAdapter.NativeToValue(map[string]any{"items": pslice{v.Slice()}})
	case t == typeList && v.Type() == pcommon.ValueTypeSlice:
		return pslice{v.Slice()}
	case t == typeStringList && v.Type() == pcommon.ValueTypeSlice:
		if allStrings(v.Slice()) {
			return pslice{v.Slice()}
		}
		strs := make([]string, v.Slice().Len())
		for i := range strs {
			strs[i] = v.Slice().At(i).AsString()
		}
		return types.DefaultTypeAdapter.NativeToValue(strs)
	case t == typeStringList && v.Type() == pcommon.ValueTypeStr:
		return types.DefaultTypeAdapter.NativeToValue([]string{v.Str()})
	}
	if t == typeMap {
		return emptyMap
	}
	return emptyList
}

func allStrings(s pcommon.Slice) bool {
	for i := 0; i < s.Len(); i++ {
		if s.At(i).Type() != pcommon.ValueTypeStr {
			return false
		}
	}
	return true
}
