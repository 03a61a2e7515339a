package kubeeventsreceiver

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResourceVersionOrder(t *testing.T) {
	assert.True(t, newerRV("10", ""), "no checkpoint: everything is new")
	assert.True(t, newerRV("10", "9"))
	assert.False(t, newerRV("9", "10"), "numeric, not lexical")
	assert.False(t, newerRV("10", "10"))
	assert.True(t, newerRV("abc", "10"), "an unknown order counts as newer")
	assert.Equal(t, "12", maxRV("12", "9"))
	assert.Equal(t, "12", maxRV("", "12"))
	assert.Equal(t, "9", maxRV("9", ""))
}

func TestOccurrences(t *testing.T) {
	e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{UID: "u"}}
	assert.Equal(t, int64(1), occurrences(e), "at least one")
	e.Count = 4
	assert.Equal(t, "u/4", dedupeKey(e))
	e.Series = &corev1.EventSeries{Count: 7}
	assert.Equal(t, int64(7), occurrences(e), "the series wins")
}

// TestBothVersionsMapAlike: the same Event read through either API gives the
// same record, so the dedupe key and the attributes do not depend on the API.
func TestBothVersionsMapAlike(t *testing.T) {
	at := metav1.NewMicroTime(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC))
	ev1 := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "5"},
		EventTime:  at, Series: &eventsv1.EventSeries{Count: 3, LastObservedTime: at},
		ReportingController: "c", ReportingInstance: "i", Action: "A", Reason: "R", Type: "Warning", Note: "n",
		Regarding: corev1.ObjectReference{Kind: "Node", Name: "node-1"},
	}
	core := &corev1.Event{
		ObjectMeta: ev1.ObjectMeta, EventTime: at, Series: &corev1.EventSeries{Count: 3, LastObservedTime: at},
		ReportingController: "c", ReportingInstance: "i", Action: "A", Reason: "R", Type: "Warning", Message: "n",
		InvolvedObject: ev1.Regarding,
	}
	a, b := plog.NewLogRecord(), plog.NewLogRecord()
	conv, ok := asCoreEvent(ev1)
	assert.True(t, ok)
	mapEvent(conv, nil, 0, a)
	mapEvent(core, nil, 0, b)
	assert.Equal(t, b.Attributes().AsRaw(), a.Attributes().AsRaw())
	assert.Equal(t, dedupeKey(core), dedupeKey(conv))
	assert.Equal(t, "u/3", dedupeKey(conv))
}

// FuzzMapEvent: whatever an apiserver (or a man in the middle) sends as an
// Event, mapping never panics and always yields a k8s.event record.
func FuzzMapEvent(f *testing.F) {
	seed, _ := json.Marshal(coreEvent("ns", "n", "BackOff", "m"))
	f.Add(seed)
	f.Add([]byte(`{"metadata":{"uid":"u"},"series":{"count":-3},"count":-1,"involvedObject":{"kind":"Pod"}}`))
	f.Add([]byte(`{"eventTime":"2026-01-01T00:00:00.000000Z","type":"Weird"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e corev1.Event
		if json.Unmarshal(data, &e) != nil {
			return
		}
		lr := plog.NewLogRecord()
		mapEvent(&e, nil, 0, lr)
		if lr.EventName() != eventName {
			t.Fatal("no event name")
		}
		if occurrences(&e) < 1 {
			t.Fatal("count below 1")
		}
		_ = dedupeKey(&e)
	})
}
