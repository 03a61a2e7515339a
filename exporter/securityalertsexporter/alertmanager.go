package securityalertsexporter

import (
	"encoding/json"
	"strings"
	"time"
)

// amAlert is one alert of Alertmanager's v2 API (POST /api/v2/alerts).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerPath is where the v2 API takes alerts, appended to the endpoint.
const alertmanagerPath = "/api/v2/alerts"

// renderAlertmanager renders every alert of a batch into one request body.
// Labels hold only the configured low-cardinality values; everything that
// varies per event is an annotation, so that Alertmanager's grouping and
// deduplication see one alert per rule and place, refreshed by each firing.
func renderAlertmanager(alerts []Alert, cfg *AlertmanagerConfig, now time.Time) ([]byte, error) {
	out := make([]amAlert, 0, len(alerts))
	for i := range alerts {
		out = append(out, toAlertmanager(&alerts[i], cfg, now))
	}
	return json.Marshal(out)
}

func toAlertmanager(a *Alert, cfg *AlertmanagerConfig, now time.Time) amAlert {
	name := a.Rule
	if name == "" {
		name = "security.alert" // Alertmanager refuses an alert with no label at all
	}
	labels := map[string]string{"alertname": name}
	for label, attr := range cfg.Labels {
		if v := a.Attr(attr); v != "" && attr != "" {
			labels[label] = v
		}
	}
	ann := map[string]string{"summary": a.Output}
	putAnn(ann, "description", a.Description)
	putAnn(ann, "reference", a.Reference)
	putAnn(ann, "mitre_tactics", strings.Join(a.Tactics, ", "))
	putAnn(ann, "mitre_techniques", strings.Join(a.Techniques, ", "))
	putAnn(ann, "evidence_ids", strings.Join(a.EvidenceIDs, ", "))
	putAnn(ann, "event_name", a.EventName)
	putAnn(ann, "event_time", a.Time.Format(time.RFC3339Nano))
	// The per-event values a responder needs, which can never be labels.
	for _, k := range perEventAttrs {
		if _, ok := a.Attrs[k]; ok {
			putAnn(ann, annotationName(k), a.Attr(k))
		}
	}
	start := a.Time
	if start.IsZero() || start.After(now) {
		start = now
	}
	return amAlert{
		Labels:       labels,
		Annotations:  ann,
		StartsAt:     start,
		EndsAt:       now.Add(cfg.ResolveTimeout),
		GeneratorURL: a.Reference,
	}
}

func putAnn(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// annotationName makes an attribute name a valid Alertmanager label name
// (annotations follow label-name rules): process.pid becomes process_pid.
func annotationName(attr string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, attr)
}
