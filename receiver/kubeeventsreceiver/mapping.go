package kubeeventsreceiver

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	corev1 "k8s.io/api/core/v1"
)

// EventName of every record this receiver emits.
const eventName = "k8s.event"

// Attribute names (also in documentation and internal/rules/schema.go). The
// Event's own namespace is k8s.namespace.name; the involved object's identity is
// k8s.object.*, and for pods also k8s.pod.name/uid and the workload, as semconv.
const (
	attrEventName         = "k8s.event.name"
	attrEventUID          = "k8s.event.uid"
	attrEventType         = "k8s.event.type"
	attrEventReason       = "k8s.event.reason"
	attrEventAction       = "k8s.event.action"
	attrEventCount        = "k8s.event.count"
	attrEventFirstTime    = "k8s.event.first_time"
	attrEventLastTime     = "k8s.event.last_time"
	attrEventTime         = "k8s.event.time"
	attrReportingCtrl     = "k8s.event.reporting_controller"
	attrReportingInstance = "k8s.event.reporting_instance"
	attrSourceComponent   = "k8s.event.source.component"
	attrSourceHost        = "k8s.event.source.host"
	attrNamespace         = "k8s.namespace.name"
	attrObjectKind        = "k8s.object.kind"
	attrObjectName        = "k8s.object.name"
	attrObjectNamespace   = "k8s.object.namespace"
	attrObjectUID         = "k8s.object.uid"
	attrObjectFieldPath   = "k8s.object.field_path"
	attrObjectAPIVersion  = "k8s.object.api_version"
	attrRelatedKind       = "k8s.event.related.kind"
	attrRelatedName       = "k8s.event.related.name"
	attrPodName           = "k8s.pod.name"
	attrPodUID            = "k8s.pod.uid"
	attrNodeName          = "k8s.node.name"
)

// mapEvent fills lr from e; pod is the involved pod's cached metadata, or nil.
func mapEvent(e *corev1.Event, pod *podMeta, observed pcommon.Timestamp, lr plog.LogRecord) {
	lr.SetEventName(eventName)
	lr.SetObservedTimestamp(observed)
	if t := eventTimestamp(e); !t.IsZero() {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
	}
	switch e.Type {
	case corev1.EventTypeNormal:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	case corev1.EventTypeWarning:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	lr.Body().SetStr(e.Message)

	a := lr.Attributes()
	a.EnsureCapacity(24)
	a.PutStr(attrEventName, e.Name)
	a.PutStr(attrEventUID, string(e.UID))
	putNonEmpty(a, attrNamespace, e.Namespace)
	putNonEmpty(a, attrEventType, e.Type)
	putNonEmpty(a, attrEventReason, e.Reason)
	putNonEmpty(a, attrEventAction, e.Action)
	a.PutInt(attrEventCount, occurrences(e))
	putTime(a, attrEventFirstTime, e.FirstTimestamp.Time)
	last := e.LastTimestamp.Time
	if e.Series != nil && !e.Series.LastObservedTime.IsZero() {
		last = e.Series.LastObservedTime.Time
	}
	putTime(a, attrEventLastTime, last)
	putTime(a, attrEventTime, e.EventTime.Time)
	putNonEmpty(a, attrReportingCtrl, e.ReportingController)
	putNonEmpty(a, attrReportingInstance, e.ReportingInstance)
	putNonEmpty(a, attrSourceComponent, e.Source.Component)
	putNonEmpty(a, attrSourceHost, e.Source.Host)

	o := &e.InvolvedObject
	putNonEmpty(a, attrObjectKind, o.Kind)
	putNonEmpty(a, attrObjectName, o.Name)
	putNonEmpty(a, attrObjectNamespace, o.Namespace)
	putNonEmpty(a, attrObjectUID, string(o.UID))
	putNonEmpty(a, attrObjectFieldPath, o.FieldPath)
	putNonEmpty(a, attrObjectAPIVersion, o.APIVersion)
	if e.Related != nil {
		putNonEmpty(a, attrRelatedKind, e.Related.Kind)
		putNonEmpty(a, attrRelatedName, e.Related.Name)
	}
	switch o.Kind {
	case "Pod":
		putNonEmpty(a, attrPodName, o.Name)
		putNonEmpty(a, attrPodUID, string(o.UID))
		pod.putAttributes(a)
	case "Node":
		putNonEmpty(a, attrNodeName, o.Name)
	}
}

// eventTimestamp is when the occurrence this version reports happened: the
// latest observation the Event carries.
func eventTimestamp(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func putNonEmpty(a pcommon.Map, k, v string) {
	if v != "" {
		a.PutStr(k, v)
	}
}

// putTime writes RFC 3339 with the source's precision: rules compare strings.
func putTime(a pcommon.Map, k string, t time.Time) {
	if !t.IsZero() {
		a.PutStr(k, t.UTC().Format(time.RFC3339Nano))
	}
}
