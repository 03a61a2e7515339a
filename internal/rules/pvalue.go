package rules

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Structured attributes (an audit request object, a pod spec) are read by
// conditions in place: pmap and pslice present pdata maps and slices to CEL
// without copying them. Converting a pod spec to Go maps for every event that
// a rule looks into cost more than all the rest of the evaluation.

// valueOf presents one pdata value to CEL.
func valueOf(v pcommon.Value) ref.Val {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return types.String(v.Str())
	case pcommon.ValueTypeInt:
		return types.Int(v.Int())
	case pcommon.ValueTypeDouble:
		return types.Double(v.Double())
	case pcommon.ValueTypeBool:
		return types.Bool(v.Bool())
	case pcommon.ValueTypeMap:
		return pmap{v.Map()}
	case pcommon.ValueTypeSlice:
		return pslice{v.Slice()}
	case pcommon.ValueTypeBytes:
		return types.Bytes(v.Bytes().AsRaw())
	}
	return types.NullValue
}

// pmap is a pcommon.Map as a CEL map with string keys.
type pmap struct{ m pcommon.Map }

var _ traits.Mapper = pmap{}

func (p pmap) native() ref.Val { return types.DefaultTypeAdapter.NativeToValue(p.m.AsRaw()) }

func (p pmap) ConvertToNative(t reflect.Type) (any, error) { return p.native().ConvertToNative(t) }
func (p pmap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return p
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}
func (p pmap) Equal(other ref.Val) ref.Val { return p.native().Equal(other) }
func (p pmap) Type() ref.Type              { return types.MapType }
func (p pmap) Value() any                  { return p.m.AsRaw() }
func (p pmap) Size() ref.Val               { return types.Int(p.m.Len()) }

func (p pmap) Contains(key ref.Val) ref.Val {
	_, found := p.Find(key)
	return types.Bool(found)
}

func (p pmap) Get(key ref.Val) ref.Val {
	if v, found := p.Find(key); found {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func (p pmap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	v, found := p.m.Get(string(k))
	if !found {
		return nil, false
	}
	return valueOf(v), true
}

func (p pmap) Iterator() traits.Iterator {
	keys := make([]string, 0, p.m.Len())
	p.m.Range(func(k string, _ pcommon.Value) bool {
		keys = append(keys, k)
		return true
	})
	return &keyIterator{keys: keys}
}

// pslice is a pcommon.Slice as a CEL list.
type pslice struct{ s pcommon.Slice }

var _ traits.Lister = pslice{}

func (p pslice) native() ref.Val { return types.DefaultTypeAdapter.NativeToValue(p.s.AsRaw()) }

func (p pslice) ConvertToNative(t reflect.Type) (any, error) { return p.native().ConvertToNative(t) }
func (p pslice) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.ListType:
		return p
	case types.TypeType:
		return types.ListType
	}
	return types.NewErr("type conversion error from list to '%s'", t)
}
func (p pslice) Equal(other ref.Val) ref.Val { return p.native().Equal(other) }
func (p pslice) Type() ref.Type              { return types.ListType }
func (p pslice) Value() any                  { return p.s.AsRaw() }
func (p pslice) Size() ref.Val               { return types.Int(p.s.Len()) }
func (p pslice) Add(other ref.Val) ref.Val   { return p.native().(traits.Adder).Add(other) }
func (p pslice) Contains(value ref.Val) ref.Val {
	for i := 0; i < p.s.Len(); i++ {
		if valueOf(p.s.At(i)).Equal(value) == types.True {
			return types.True
		}
	}
	return types.False
}
func (p pslice) Iterator() traits.Iterator { return &sliceIterator{s: p.s} }
func (p pslice) Get(index ref.Val) ref.Val {
	i, ok := index.(types.Int)
	if !ok || int(i) < 0 || int(i) >= p.s.Len() {
		return types.NewErr("index out of range: %v", index)
	}
	return valueOf(p.s.At(int(i)))
}

// The iterators are ref.Vals only because CEL's interface says so.

type sliceIterator struct {
	s pcommon.Slice
	i int
}

func (it *sliceIterator) HasNext() ref.Val { return types.Bool(it.i < it.s.Len()) }
func (it *sliceIterator) Next() ref.Val {
	v := valueOf(it.s.At(it.i))
	it.i++
	return v
}
func (it *sliceIterator) ConvertToNative(reflect.Type) (any, error) { return nil, errIterator }
func (it *sliceIterator) ConvertToType(ref.Type) ref.Val            { return types.NewErr("iterator") }
func (it *sliceIterator) Equal(ref.Val) ref.Val                     { return types.False }
func (it *sliceIterator) Type() ref.Type                            { return types.IteratorType }
func (it *sliceIterator) Value() any                                { return nil }

type keyIterator struct {
	keys []string
	i    int
}

func (it *keyIterator) HasNext() ref.Val { return types.Bool(it.i < len(it.keys)) }
func (it *keyIterator) Next() ref.Val {
	k := it.keys[it.i]
	it.i++
	return types.String(k)
}
func (it *keyIterator) ConvertToNative(reflect.Type) (any, error) { return nil, errIterator }
func (it *keyIterator) ConvertToType(ref.Type) ref.Val            { return types.NewErr("iterator") }
func (it *keyIterator) Equal(ref.Val) ref.Val                     { return types.False }
func (it *keyIterator) Type() ref.Type                            { return types.IteratorType }
func (it *keyIterator) Value() any                                { return nil }

var errIterator = types.NewErr("an iterator has no native value").(*types.Err)
