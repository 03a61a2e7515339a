package kubeeventsreceiver

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// asCoreEvent returns obj as a core/v1 Event: both APIs serve the same stored
// object, so one mapping serves both. ok is false for anything else.
func asCoreEvent(obj runtime.Object) (*corev1.Event, bool) {
	switch e := obj.(type) {
	case *corev1.Event:
		return e, true
	case *eventsv1.Event:
		return fromEventsV1(e), true
	}
	return nil, false
}

// fromEventsV1 is the apiserver's own conversion between the two versions.
func fromEventsV1(e *eventsv1.Event) *corev1.Event {
	ce := &corev1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Related:             e.Related,
		Reason:              e.Reason,
		Message:             e.Note,
		Type:                e.Type,
		Action:              e.Action,
		EventTime:           e.EventTime,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
	}
	if e.Series != nil {
		ce.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return ce
}

// occurrences is how many times the Event says it happened: the series count
// (events.k8s.io recorders), else the deprecated count, at least 1.
func occurrences(e *corev1.Event) int64 {
	if e.Series != nil && e.Series.Count > 0 {
		return int64(e.Series.Count)
	}
	if e.Count > 0 {
		return int64(e.Count)
	}
	return 1
}

// dedupeKey names one occurrence: the same Event seen again with the same count
// (through the other API, a relist, a replayed watch) is the same occurrence.
func dedupeKey(e *corev1.Event) string {
	return string(e.UID) + "/" + strconv.FormatInt(occurrences(e), 10)
}

// parseRV reads a resourceVersion as the number etcd makes of it. Kubernetes
// calls them opaque, but every apiserver backed by etcd hands out etcd
// revisions, and resume-after-gone needs an order; ok is false when rv is not a
// number, and then only the dedupe cache guards against repeats.
func parseRV(rv string) (uint64, bool) {
	n, err := strconv.ParseUint(rv, 10, 64)
	return n, err == nil
}

// newerRV reports whether rv is after checkpoint; an unknown order counts as newer.
func newerRV(rv, checkpoint string) bool {
	if checkpoint == "" {
		return true
	}
	a, ok1 := parseRV(rv)
	b, ok2 := parseRV(checkpoint)
	if !ok1 || !ok2 {
		return true
	}
	return a > b
}

// maxRV is the later of two resourceVersions ("" when both are empty).
func maxRV(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" || !newerRV(b, a) {
		return a
	}
	return b
}
