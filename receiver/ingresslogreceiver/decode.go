package ingresslogreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	al "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/accesslog"
)

// decoder turns a batch of lines from one file into entries. It keeps its
// parser, buffers and entries between batches, so one decoder serves one
// goroutine at a time (a sync.Pool of them in the receiver).
type decoder struct {
	parser  al.Parser
	mapper  mapper
	unwrap  unwrapper
	entries []entry
	n       int
}

// lineStats counts one batch's lines.
type lineStats struct{ parsed, malformed int }

// decode reads a batch of lines; the entries stay valid until the next call.
func (d *decoder) decode(lines [][]byte, stats *lineStats) []entry {
	d.mapper.arena.b = d.mapper.arena.b[:0]
	d.n = 0
	for _, line := range lines {
		msg, complete, err := d.unwrap.unwrap(line)
		if err == nil && !complete {
			continue
		}
		e := d.next()
		if err != nil {
			d.mapper.mapBad(e, line, err.Error())
			stats.malformed++
			continue
		}
		if err := d.parser.Parse(msg, &d.mapper.rec); err != nil {
			d.mapper.mapBad(e, msg, err.Error())
			stats.malformed++
			continue
		}
		d.mapper.mapLine(e)
		stats.parsed++
	}
	return d.entries[:d.n]
}

// next hands out the batch's next entry, reusing its attribute slices.
func (d *decoder) next() *entry {
	if d.n == len(d.entries) {
		d.entries = append(d.entries, entry{
			strs: make([]strAttr, 0, 24), ints: make([]intAttr, 0, 8), dbls: make([]dblAttr, 0, 2),
		})
	}
	e := &d.entries[d.n]
	d.n++
	e.reset()
	return e
}

// strings returns the batch's arena as one string: every attribute value of
// the batch is a substring of it, one allocation for the batch.
func (d *decoder) strings() string { return string(d.mapper.arena.b) }

// appendRecords writes entries as log records.
func appendRecords(entries []entry, strs string, lrs plog.LogRecordSlice, observed pcommon.Timestamp) {
	lrs.EnsureCapacity(lrs.Len() + len(entries))
	for i := range entries {
		entries[i].toRecord(lrs.AppendEmpty(), strs, observed)
	}
}
