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
	set        *Set
	ev         *Event
	macros     []ref.Val // nil: not evaluated yet
	cache      map[string]ref.Val
	candidates []*Rule // scratch for the index
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) reset(set *Set, ev *Event) {
	a.set, a.ev = set, ev
	if cap(a.macros) < len(set.macros) {
		a.macros = make([]ref.Val, len(set.macros))
	}
	a.macros = a.macros[:len(set.macros)]
	clear(a.macros)
	clear(a.cache)
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
	case nameMacro:
		if v := a.macros[r.index]; v != nil {
			return v, true
		}
		v, _, err := a.set.macros[r.index].Eval(a)
		if err != nil {
			v = types.WrapErr(err)
		}
		a.macros[r.index] = v
		return v, true
	default:
		return a.attr(name, r.typ), true
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
	// Lists and maps: converted once per event.
	if c, hit := a.cache[name]; hit {
		return c
	}
	var out ref.Val
	switch {
	case ok && t == typeMap && v.Type() == pcommon.ValueTypeMap:
		out = types.DefaultTypeAdapter.NativeToValue(v.Map().AsRaw())
	case ok && t == typeMap && v.Type() == pcommon.ValueTypeSlice:
		// A JSON patch request object is a list: offer it under "items".
		out = types.DefaultTypeAdapter.NativeToValue(map[string]any{"items": v.Slice().AsRaw()})
	case ok && (t == typeStringList || t == typeList) && v.Type() == pcommon.ValueTypeSlice:
		if t == typeStringList {
			s := v.Slice()
			strs := make([]string, s.Len())
			for i := range strs {
				strs[i] = s.At(i).AsString()
			}
			out = types.DefaultTypeAdapter.NativeToValue(strs)
		} else {
			out = types.DefaultTypeAdapter.NativeToValue(v.Slice().AsRaw())
		}
	case ok && t == typeStringList && v.Type() == pcommon.ValueTypeStr:
		out = types.DefaultTypeAdapter.NativeToValue([]string{v.Str()})
	case t == typeMap:
		out = emptyMap
	default:
		out = emptyList
	}
	if a.cache == nil {
		a.cache = map[string]ref.Val{}
	}
	a.cache[name] = out
	return out
}
