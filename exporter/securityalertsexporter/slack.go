package securityalertsexporter

import (
	"encoding/json"
	"fmt"
	"strings"
)

// slackMessage is an incoming-webhook message. Slack renders the
// attachment's blocks beside its colour bar; Mattermost and Rocket.Chat
// incoming webhooks take the same body and render the attachment's
// classic fields (title, text, fields, color), which carry the same facts.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Title    string       `json:"title"`
	Text     string       `json:"text"`
	Fields   []slackField `json:"fields"`
	Blocks   []slackBlock `json:"blocks"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// severityColours: the colour bar tells the severity at a glance.
var severityColours = map[string]string{
	"critical": "#8B0000",
	"high":     "#E01E5A",
	"medium":   "#ECB22E",
	"low":      "#36C5F0",
	"info":     "#A0A0A0",
}

// mitreURL links a technique ID (T1609, T1552.001) to its ATT&CK page.
func mitreURL(technique string) string {
	return "https://attack.mitre.org/techniques/" + strings.ReplaceAll(technique, ".", "/") + "/"
}

// renderSlack renders one alert as a message.
func renderSlack(a *Alert) ([]byte, error) {
	colour, ok := severityColours[a.Severity]
	if !ok {
		colour = severityColours["info"]
	}
	title := fmt.Sprintf("[%s] %s", strings.ToUpper(orDash(a.Severity)), orDash(a.Rule))
	if a.GroupCount > 0 {
		title += fmt.Sprintf(" (%d more)", a.GroupCount)
	}
	pod := podName(a)
	var mitre []string
	for _, t := range a.Techniques {
		mitre = append(mitre, fmt.Sprintf("<%s|%s>", mitreURL(t), t))
	}
	fields := []slackField{
		{Title: "Severity", Value: orDash(a.Severity), Short: true},
		{Title: "Pod", Value: pod, Short: true},
		{Title: "MITRE ATT&CK", Value: orDash(strings.Join(mitre, ", ")), Short: true},
		{Title: "Node", Value: orDash(a.Attr("k8s.node.name")), Short: true},
	}
	blockFields := make([]slackText, 0, len(fields))
	for _, f := range fields {
		blockFields = append(blockFields, slackText{Type: "mrkdwn", Text: "*" + f.Title + "*\n" + f.Value})
	}
	msg := slackMessage{
		Text: title,
		Attachments: []slackAttachment{{
			Color:    colour,
			Fallback: title + ": " + a.Output,
			Title:    title,
			Text:     a.Output,
			Fields:   fields,
			Blocks: []slackBlock{
				{Type: "header", Text: &slackText{Type: "plain_text", Text: title}},
				{Type: "section", Text: &slackText{Type: "mrkdwn", Text: orDash(a.Output)}},
				{Type: "section", Fields: blockFields},
			},
		}},
	}
	return json.Marshal(msg)
}

// podName is namespace/pod, or "-" for an alert with no pod (a node-level
// event, a record missing attributes).
func podName(a *Alert) string {
	ns, pod := a.Attr("k8s.namespace.name"), a.Attr("k8s.pod.name")
	switch {
	case ns != "" && pod != "":
		return ns + "/" + pod
	case pod != "":
		return pod
	}
	return "-"
}

// orDash keeps a Slack field from being empty, which Slack refuses.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
