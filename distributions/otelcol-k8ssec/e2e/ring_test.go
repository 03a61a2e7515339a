package e2e

import (
	binenc "encoding/binary"
	"hash/crc32"
	"sort"
)

// ringOwner says which endpoint contrib's loadbalancing exporter (v0.145.0,
// consistent_hashing.go) sends an identifier (a record's trace ID) to, for a
// resolver that returned endpoints: its hash ring reproduced, so that a test
// can name the keys a membership change moves. 100 points per endpoint on a
// ring of 36000 positions, crc32 (IEEE) throughout; taken positions are
// probed forward up to 10 times.
func ringOwner(endpoints []string, identifier []byte) string {
	const maxPositions, weight, probeLimit = 36000, 100, 10
	sorted := append([]string(nil), endpoints...)
	sort.Strings(sorted) // the static resolver sorts
	type item struct {
		pos      uint32
		endpoint string
	}
	var items []item
	taken := map[uint32]bool{}
	buf := make([]byte, 4)
	for _, ep := range sorted {
		for i := range weight {
			h := crc32.NewIEEE()
			binenc.LittleEndian.PutUint32(buf, uint32(i))
			h.Write([]byte(ep))
			h.Write(buf)
			pos := h.Sum32() % maxPositions
			probed := 0
			for taken[pos] && probed < probeLimit {
				pos = (pos + 1) % maxPositions
				probed++
			}
			if probed >= probeLimit {
				continue
			}
			taken[pos] = true
			items = append(items, item{pos, ep})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].pos < items[j].pos })
	pos := crc32.ChecksumIEEE(identifier) % maxPositions
	// The first item at or after pos, wrapping around.
	i := sort.Search(len(items), func(i int) bool { return items[i].pos >= pos })
	if i == len(items) {
		i = 0
	}
	return items[i].endpoint
}
