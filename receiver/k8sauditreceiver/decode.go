package k8sauditreceiver

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/buger/jsonparser"
	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/plog"
)

const auditAPIVersion = "audit.k8s.io/v1"

// errBadBody is a request body that is not an audit.k8s.io/v1 EventList or
// Event at all; nothing in it can be used, so the whole request is refused.
var errBadBody = errors.New("malformed audit payload")

// eventError is one audit event that could not be used: where it was and why.
type eventError struct {
	Index   int    // position in the EventList, or the line's record number
	AuditID string // empty when the event had none
	Reason  string
}

func (e eventError) Error() string {
	if e.AuditID != "" {
		return fmt.Sprintf("event %d (auditID %s): %s", e.Index, e.AuditID, e.Reason)
	}
	return fmt.Sprintf("event %d: %s", e.Index, e.Reason)
}

// decodeStats counts what one body or batch of lines held.
type decodeStats struct {
	received  int // well-formed events, before stage filtering
	filtered  int // well-formed events whose stage is not kept
	malformed []eventError
}

// decoder turns raw audit JSON into log records. It reuses its parser between
// events, so one decoder serves one goroutine at a time (see decoderPool).
type decoder struct {
	mapper
	parser       fastjson.Parser
	maxEventSize int
}

// decodeBody decodes what the apiserver's webhook backend posts: an EventList,
// or a single Event. A body that is not JSON or not an audit.k8s.io/v1 list or
// event returns errBadBody; an unusable event inside a good list is reported in
// stats and the rest still go through.
func (d *decoder) decodeBody(body []byte, out plog.LogRecordSlice, stats *decodeStats) error {
	kind, _ := jsonparser.GetString(body, "kind")
	apiVersion, _ := jsonparser.GetString(body, "apiVersion")
	if apiVersion != auditAPIVersion {
		return refuse(body, fmt.Errorf("%w: apiVersion %q, want %q", errBadBody, apiVersion, auditAPIVersion))
	}
	switch kind {
	case "Event":
		d.decodeEvent(body, 0, out, stats)
		return nil
	case "EventList":
	default:
		return refuse(body, fmt.Errorf("%w: kind %q, want EventList or Event", errBadBody, kind))
	}
	if len(body) <= d.maxEventSize {
		return d.decodeWholeList(body, out, stats)
	}

	// Some event may be over max_event_size: one skim splits the list so that
	// each event is measured and parsed on its own. A body cut short fails
	// here and is refused whole. the list into events; each is then parsed on its own, so
	// a bad one costs only itself and max_event_size sees its real size. A
	// body cut short fails here and is refused whole.
	index := 0
	_, err := jsonparser.ArrayEach(body, func(raw []byte, typ jsonparser.ValueType, _ int, _ error) {
		if typ != jsonparser.Object {
			stats.malformed = append(stats.malformed, eventError{Index: index, Reason: "event is a " + typ.String() + ", want an object"})
		} else {
			d.decodeEvent(raw, index, out, stats)
		}
		index++
	}, "items")
	if err == nil || errors.Is(err, jsonparser.KeyPathNotFoundError) {
		return nil // absent items: an empty list
	}
	switch _, typ, _, _ := jsonparser.Get(body, "items"); typ {
	case jsonparser.Null:
		return refuse(body, nil)
	case jsonparser.Array:
		return refuse(body, fmt.Errorf("%w: items: %v", errBadBody, err))
	default:
		return refuse(body, fmt.Errorf("%w: items is a %s, want an array", errBadBody, typ))
	}
}

// decodeWholeList parses a list in one pass when the whole body is within
// max_event_size, so that no event of it can be over. This is the common case
// (a batch of 400 events is about 0.5 MiB) and about a third faster than
// skimming first. All records of the batch share one string arena.
func (d *decoder) decodeWholeList(body []byte, out plog.LogRecordSlice, stats *decodeStats) error {
	v, err := d.parser.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("%w: invalid JSON: %v", errBadBody, err)
	}
	items := v.Get("items")
	if items == nil || items.Type() == fastjson.TypeNull {
		return nil
	}
	arr, err := items.Array()
	if err != nil {
		return fmt.Errorf("%w: items is a %s, want an array", errBadBody, items.Type())
	}
	d.strs.reset(len(body))
	for i, item := range arr {
		d.mapInto(item, i, out, stats)
	}
	return nil
}

// refuse explains why a body is refused: invalid JSON first, since the skim
// that found the problem reads only part of it. Only refused bodies pay for
// the full validation.
func refuse(body []byte, err error) error {
	if verr := fastjson.ValidateBytes(body); verr != nil {
		return fmt.Errorf("%w: invalid JSON: %v", errBadBody, verr)
	}
	return err
}

// decodeLine decodes one line of an audit log file (one Event per line).
func (d *decoder) decodeLine(line []byte, index int, out plog.LogRecordSlice, stats *decodeStats) {
	d.decodeEvent(line, index, out, stats)
}

// decodeEvent parses one audit event and appends its record to out, or records
// why it could not.
func (d *decoder) decodeEvent(raw []byte, index int, out plog.LogRecordSlice, stats *decodeStats) {
	if len(raw) > d.maxEventSize {
		stats.malformed = append(stats.malformed, eventError{Index: index,
			Reason: "event of " + strconv.Itoa(len(raw)) + " bytes is over max_event_size " + strconv.Itoa(d.maxEventSize)})
		return
	}
	v, err := d.parser.ParseBytes(raw)
	if err != nil {
		stats.malformed = append(stats.malformed, eventError{Index: index, Reason: "invalid JSON: " + err.Error()})
		return
	}
	d.strs.reset(len(raw))
	d.mapInto(v, index, out, stats)
}

// mapInto maps one parsed event into out and counts it.
func (d *decoder) mapInto(v *fastjson.Value, index int, out plog.LogRecordSlice, stats *decodeStats) {
	if v.Type() != fastjson.TypeObject {
		stats.malformed = append(stats.malformed, eventError{Index: index, Reason: "event is a " + v.Type().String() + ", want an object"})
		return
	}
	keep, err := d.mapEvent(v, out)
	if err != nil {
		stats.malformed = append(stats.malformed, eventError{Index: index, AuditID: string(v.GetStringBytes("auditID")), Reason: err.Error()})
		return
	}
	stats.received++
	if !keep {
		stats.filtered++
	}
}
