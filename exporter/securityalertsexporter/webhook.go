package securityalertsexporter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// templateFuncs help a template write valid JSON.
var templateFuncs = template.FuncMap{
	// json encodes any value as JSON: {{ json .Output }} is a quoted string.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// attr reads an attribute by its dotted name ("" when absent).
	"attr": func(a *Alert, name string) string { return a.Attr(name) },
	"join": strings.Join,
}

// parseTemplate parses a webhook template. A parse error names the line and,
// where the error quotes the offending text, the column.
func parseTemplate(text string) (*template.Template, error) {
	t, err := template.New("webhook").Funcs(templateFuncs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, positionError(text, err)
	}
	return t, nil
}

var (
	parseErrLine = regexp.MustCompile(`^template: webhook:(\d+): (.*)$`)
	quoted       = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// positionError rewrites text/template's "template: webhook:LINE: msg" (it
// gives no column) as "line L, column C: msg", locating the text the message
// quotes on that line, or the line's first action when it quotes none.
func positionError(text string, err error) error {
	m := parseErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(m[1])
	lines := strings.Split(text, "\n")
	col := 1
	if line >= 1 && line <= len(lines) {
		src := lines[line-1]
		col = strings.Index(src, "{{") + 1
		for _, q := range quoted.FindAllStringSubmatch(m[2], -1) {
			if unq, uerr := strconv.Unquote(`"` + q[1] + `"`); uerr == nil && unq != "" {
				if i := strings.Index(src, unq); i >= 0 {
					col = i + 1
					break
				}
			}
		}
		if col < 1 {
			col = 1
		}
	}
	return fmt.Errorf("line %d, column %d: %s", line, col, m[2])
}

// renderWebhook renders one alert with the template, or as flat JSON when
// there is none.
func renderWebhook(t *template.Template, a *Alert) ([]byte, error) {
	if t == nil {
		return json.Marshal(flatAlert(a))
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, a); err != nil {
		return nil, fmt.Errorf("webhook.template: %w", err)
	}
	return buf.Bytes(), nil
}

// flatAlert is the default webhook body: one JSON object, the alert's
// fields and then the event's attributes under their dotted names.
func flatAlert(a *Alert) map[string]any {
	m := make(map[string]any, len(a.Attrs)+16)
	for k, v := range a.Attrs {
		if !strings.HasPrefix(k, "security_rule.") { // they are the fields below
			m[k] = v
		}
	}
	m["time"] = a.Time.Format(time.RFC3339Nano)
	m["rule"] = a.Rule
	m["rule_id"] = a.RuleID
	m["ruleset"] = a.Ruleset
	m["category"] = a.Category
	m["severity"] = a.Severity
	m["output"] = a.Output
	m["description"] = a.Description
	m["reference"] = a.Reference
	m["event_name"] = a.EventName
	m["tags"] = nonNil(a.Tags)
	m["mitre_tactics"] = nonNil(a.Tactics)
	m["mitre_techniques"] = nonNil(a.Techniques)
	m["evidence_ids"] = nonNil(a.EvidenceIDs)
	if a.GroupCount > 0 {
		m["group_count"] = a.GroupCount
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
