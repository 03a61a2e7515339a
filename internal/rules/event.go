package rules

import (
	"strconv"
	"sync/atomic"
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
	// ResourceID, when not zero, is the same for the events of one resource
	// in one batch and never used for another: the resource's attributes are
	// then indexed once for all of them (see NewResourceID).
	ResourceID uint64
	// KeyBy, when not empty, limits the event to the stateful rules keyed by
	// these attributes (KeyBy's form): a gateway's front tier sends one copy
	// of an event per key family, and each copy must feed only its own.
	KeyBy string
}

var resourceIDs atomic.Uint64

// NewResourceID names one resource of one batch for Event.ResourceID.
func NewResourceID() uint64 { return resourceIDs.Add(1) }

// EventFromRecord views a record and its resource as an Event, without copying.
func EventFromRecord(lr plog.LogRecord, resource pcommon.Map) Event {
	t := lr.Timestamp().AsTime()
	if lr.Timestamp() == 0 {
		t = lr.ObservedTimestamp().AsTime()
	}
	return Event{Name: lr.EventName(), Severity: lr.SeverityText(), Body: lr.Body(),
		Attrs: lr.Attributes(), Resource: resource, Time: t}
}

// Get finds an attribute as rules read it: on the record, then on its resource.
func (e *Event) Get(name string) (pcommon.Value, bool) { return e.lookup(name) }

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

// emptyList is what an absent list attribute reads as.
var emptyList = types.DefaultTypeAdapter.NativeToValue([]string{})

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
	hits       []hit     // scratch: the event's stateful rules
	found      [][]*Rule // scratch for the index

	// Native evaluation's (native.go): attribute values by slot, as attrs;
	// comprehension variables; lists built during one evaluation; and the
	// comprehension steps taken against the cost limit.
	nattrs           []nslot
	present          []present // the event's attributes, by slot
	resGen           uint32    // present's generation of resource attributes
	resID            uint64    // the Event.ResourceID that present holds
	memo             []nslot   // values computed once per event, by Set.memo
	vars, scratch    []nval
	steps, stepLimit int
}

type nslot struct {
	gen uint32
	v   nval
}

type slot struct {
	gen uint32
	val ref.Val
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) reset(set *Set, ev *Event) {
	if a.set != set || a.gen == ^uint32(0) || a.resGen == ^uint32(0) {
		a.attrs = make([]slot, set.attrs)
		a.nattrs = make([]nslot, set.attrs)
		a.present = make([]present, set.attrs)
		a.memo = make([]nslot, len(set.memo))
		a.gen, a.resGen, a.resID = 0, 0, 0
	}
	a.set, a.ev = set, ev
	a.gen++
	clear(a.scratch) // lists built for the last event: let them go
	clear(a.hits)
	a.scratch = a.scratch[:0]
	a.indexAttrs()
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
	case namePresent:
		return types.Bool(a.has(r.index)), true
	default:
		if s := &a.attrs[r.index]; s.gen == a.gen {
			return s.val, true
		}
		v := a.attr(r.index, name, r.typ)
		a.attrs[r.index] = slot{a.gen, v}
		return v, true
	}
}

// nativeAttr is attribute slot, read once per event.
func (a *activation) nativeAttr(slot int, name string, t attrType) nval {
	return *a.attrRef(slot, name, t)
}

// attrRef is nativeAttr without the copy, for the hottest paths (the index,
// comparisons with constants); valid until the next event.
func (a *activation) attrRef(slot int, name string, t attrType) *nval {
	s := &a.nattrs[slot]
	if s.gen != a.gen {
		s.v = a.read(slot, name, t)
		s.gen = a.gen
	}
	return &s.v
}

// attr presents an attribute to CEL.
func (a *activation) attr(slot int, name string, t attrType) ref.Val {
	v := a.read(slot, name, t)
	switch v.k {
	case nString:
		return types.String(v.s)
	case nInt:
		return types.Int(v.int())
	case nDouble:
		return types.Double(v.double())
	case nBool:
		return types.Bool(v.b)
	case nMap:
		return pmap{v.pv.Map()}
	case nSlice:
		return pslice{v.pv.Slice()}
	case nSet:
		return types.DefaultTypeAdapter.NativeToValue(v.set().items)
	case nNull:
		return types.NullValue
	}
	return emptyList
}

// read reads an attribute as the type rules declare for it; absent or of
// another shape, it reads as that type's zero value. Lists and maps are read
// in place.
func (a *activation) read(slot int, name string, t attrType) nval {
	switch name {
	case "event.name":
		return nStringOf(a.ev.Name)
	case "event.severity":
		return nStringOf(a.ev.Severity)
	case "event.body":
		if a.ev.Body == (pcommon.Value{}) {
			return nStringOf("")
		}
		return nStringOf(a.ev.Body.AsString())
	case "k8s.pod.label", "k8s.pod.annotation":
		return nval{k: nMap, pv: a.prefixMap(name + ".")}
	}
	v, ok := a.lookup(slot)
	switch t {
	case typeDyn:
		if !ok {
			return nval{k: nNull}
		}
		if v.Type() == pcommon.ValueTypeBytes {
			return nStringOf(v.AsString()) // base64, as the collector prints bytes
		}
		return fromPdata(v)
	case typeString:
		if !ok {
			return nStringOf("")
		}
		if v.Type() == pcommon.ValueTypeStr {
			return nStringOf(v.Str())
		}
		return nStringOf(v.AsString())
	case typeInt:
		if !ok {
			return nIntOf(0)
		}
		switch v.Type() {
		case pcommon.ValueTypeInt:
			return nIntOf(v.Int())
		case pcommon.ValueTypeDouble:
			return nIntOf(int64(v.Double()))
		case pcommon.ValueTypeStr:
			n, _ := strconv.ParseInt(v.Str(), 10, 64)
			return nIntOf(n)
		}
		return nIntOf(0)
	case typeDouble:
		if ok && v.Type() == pcommon.ValueTypeDouble {
			return nDoubleOf(v.Double())
		}
		if ok && v.Type() == pcommon.ValueTypeInt {
			return nDoubleOf(float64(v.Int()))
		}
		return nDoubleOf(0)
	case typeBool:
		return nBoolOf(ok && v.Type() == pcommon.ValueTypeBool && v.Bool())
	}
	switch {
	case !ok:
	case t == typeMap && v.Type() == pcommon.ValueTypeMap:
		return nval{k: nMap, pv: v}
	case t == typeMap && v.Type() == pcommon.ValueTypeSlice:
		// A JSON patch request object is a list: offer it under "items".
		items := pcommon.NewValueMap()
		v.Slice().CopyTo(items.Map().PutEmptySlice("items"))
		return nval{k: nMap, pv: items}
	case t == typeList && v.Type() == pcommon.ValueTypeSlice:
		return nval{k: nSlice, pv: v}
	case t == typeStringList && v.Type() == pcommon.ValueTypeSlice:
		if allStrings(v.Slice()) {
			return nval{k: nSlice, pv: v}
		}
		strs := make([]string, v.Slice().Len())
		for i := range strs {
			strs[i] = v.Slice().At(i).AsString()
		}
		return stringList(strs)
	case t == typeStringList && v.Type() == pcommon.ValueTypeStr:
		return stringList([]string{v.Str()})
	}
	if t == typeMap {
		return nval{k: nMap, pv: emptyMapValue}
	}
	return nval{k: nList}
}

func allStrings(s pcommon.Slice) bool {
	for i := 0; i < s.Len(); i++ {
		if s.At(i).Type() != pcommon.ValueTypeStr {
			return false
		}
	}
	return true
}

// prefixMap gathers the event's attributes named prefix+key into one map of
// key to value (the pod's labels from k8s.pod.label.<key>), the record's over
// the resource's.
func (a *activation) prefixMap(prefix string) pcommon.Value {
	out := pcommon.NewValueMap()
	for _, m := range []pcommon.Map{a.ev.Resource, a.ev.Attrs} {
		if m == (pcommon.Map{}) {
			continue
		}
		for k, v := range m.All() {
			if len(k) > len(prefix) && k[:len(prefix)] == prefix {
				v.CopyTo(out.Map().PutEmpty(k[len(prefix):]))
			}
		}
	}
	return out
}
