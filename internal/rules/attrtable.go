package rules

import "go.opentelemetry.io/collector/pdata/pcommon"

// attrTable finds an attribute's slot by its name: open addressing on a hash
// of the name's length and three of its bytes, which costs a fraction of a Go
// map lookup. An activation indexes an event's attributes through it once,
// and every read after that is a slot access instead of a scan of the record.
type attrTable struct {
	mask  uint32
	keys  []string
	slots []int32
	// lengths has bit len%64 set for every name's length: most names rules
	// do not read are turned away by it, before any hashing.
	lengths uint64
}

func newAttrTable(names map[string]nameRef, read map[string]bool) attrTable {
	n := 0
	for name, r := range names {
		if r.kind == nameAttr && read[name] {
			n++
		}
	}
	size := 16
	for size < 4*n {
		size *= 2
	}
	t := attrTable{mask: uint32(size - 1), keys: make([]string, size), slots: make([]int32, size)}
	for name, r := range names {
		if r.kind != nameAttr || !read[name] {
			continue
		}
		i := attrHash(name) & t.mask
		for t.keys[i] != "" {
			i = (i + 1) & t.mask
		}
		t.keys[i], t.slots[i] = name, int32(r.index)
		t.lengths |= 1 << (len(name) % 64)
	}
	return t
}

func attrHash(k string) uint32 {
	n := len(k)
	if n == 0 {
		return 0
	}
	h := uint32(n)*0x9E3779B1 ^ uint32(k[n-1])*0x85EBCA6B ^ uint32(k[n/2])*0xC2B2AE35 ^ uint32(k[n*2/3])*0x27D4EB2F
	return h ^ h>>15
}

// find returns the slot of name, or -1 when rules do not know it.
func (t *attrTable) find(name string) int {
	if t.lengths&(1<<(len(name)%64)) == 0 {
		return -1
	}
	for i := attrHash(name) & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case name:
			return int(t.slots[i])
		case "":
			return -1
		}
	}
}

// present is where an event's attribute is, by slot: on the record when gen
// is the current event's, else on the resource when rgen is the current
// resource's. One entry for both keeps a lookup to one load.
type present struct {
	gen, rgen uint32
	v, rv     pcommon.Value
}

// indexAttrs records where the event's attributes are, by slot: the
// record's, and the resource's unless they are indexed already (the same
// ResourceID as the last event's). lookup prefers the record's. reset calls
// it: every event that meets an index reads some attribute.
func (a *activation) indexAttrs() {
	if id := a.ev.ResourceID; id == 0 || id != a.resID {
		a.resGen++
		a.resID = id
		if m := a.ev.Resource; m != (pcommon.Map{}) {
			for k, v := range m.All() {
				if slot := a.set.attrTable.find(k); slot >= 0 {
					p := &a.present[slot]
					p.rgen, p.rv = a.resGen, v
				}
			}
		}
	}
	if m := a.ev.Attrs; m != (pcommon.Map{}) {
		for k, v := range m.All() {
			if slot := a.set.attrTable.find(k); slot >= 0 {
				p := &a.present[slot]
				p.gen, p.v = a.gen, v
			}
		}
	}
}

// lookup is the event's attribute in slot.
func (a *activation) lookup(slot int) (pcommon.Value, bool) {
	p := &a.present[slot]
	if p.gen == a.gen {
		return p.v, true
	}
	return p.rv, p.rgen == a.resGen
}

// has reports whether the event carries the attribute in slot (on the record
// or its resource).
func (a *activation) has(slot int) bool {
	p := &a.present[slot]
	return p.gen == a.gen || p.rgen == a.resGen
}
