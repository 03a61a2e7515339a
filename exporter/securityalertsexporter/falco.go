package securityalertsexporter

import (
	"encoding/json"
	"strings"
)

// falcoAlert is Falco's JSON alert (json_output with json_include_output_property
// and json_include_tags_property), as its http_output posts it and
// falcosidekick reads it.
type falcoAlert struct {
	Time         string         `json:"time"`
	Rule         string         `json:"rule"`
	Priority     string         `json:"priority"`
	Source       string         `json:"source"`
	Hostname     string         `json:"hostname"`
	Tags         []string       `json:"tags"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
}

// falcoPriorities maps our severities to Falco's priority names. Falco has
// eight and we have five: the top two (Emergency, Alert) and Debug go unused.
var falcoPriorities = map[string]string{
	"critical": "Critical",
	"high":     "Error",
	"medium":   "Warning",
	"low":      "Notice",
	"info":     "Informational",
}

// Falco's field names for the attributes that have one, by source.
var (
	falcoSyscallFields = map[string]string{
		"process.executable.name":        "proc.name",
		"process.executable.path":        "proc.exepath",
		"process.command_line":           "proc.cmdline",
		"process.pid":                    "proc.pid",
		"process.parent_pid":             "proc.ppid",
		"process.parent.executable.name": "proc.pname",
		"process.parent.command_line":    "proc.pcmdline",
		"process.working_directory":      "proc.cwd",
		"process.user.name":              "user.name",
		"process.user.id":                "user.uid",
		"process.group.id":               "group.gid",
		"file.path":                      "fd.name",
		"file.directory":                 "fd.directory",
		"file.name":                      "fd.filename",
		"network.peer.address":           "fd.rip",
		"network.peer.port":              "fd.rport",
		"network.local.address":          "fd.lip",
		"network.local.port":             "fd.lport",
		"network.transport":              "fd.l4proto",
		"k8ssec.syscall.name":            "evt.type",
	}
	falcoAuditFields = map[string]string{
		"user.name":                        "ka.user.name",
		"k8s.audit.user.groups":            "ka.user.groups",
		"k8s.audit.verb":                   "ka.verb",
		"k8s.audit.request_uri":            "ka.uri",
		"k8s.audit.id":                     "ka.auditid",
		"k8s.audit.source_ips":             "ka.sourceips",
		"k8s.audit.object.resource":        "ka.target.resource",
		"k8s.audit.object.subresource":     "ka.target.subresource",
		"k8s.audit.object.name":            "ka.target.name",
		"k8s.audit.response.status":        "ka.response.code",
		"k8s.audit.response.reason":        "ka.response.reason",
		"k8s.audit.impersonated_user.name": "ka.impuser.name",
		"user_agent.original":              "ka.useragent",
	}
	falcoCommonFields = map[string]string{
		"container.id":         "container.id",
		"container.name":       "container.name",
		"container.image.name": "container.image.repository",
		"k8s.namespace.name":   "k8s.ns.name",
		"k8s.pod.name":         "k8s.pod.name",
		"k8s.pod.uid":          "k8s.pod.uid",
	}
)

// falcoTimeLayout is Falco's: RFC 3339 in UTC, always nine fractional digits.
const falcoTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Falco sources: its own names for what it also watches, ours for the rest.
const (
	falcoSourceSyscall = "syscall"
	falcoSourceAudit   = "k8s_audit"
	falcoSourceEvents  = "k8ssec_k8s_events"
	falcoSourceIngress = "k8ssec_ingress"
	falcoSourceOther   = "k8ssec"
)

func falcoSource(eventName string) string {
	switch {
	case eventName == "k8s.audit":
		return falcoSourceAudit
	case eventName == "k8s.event":
		return falcoSourceEvents
	case strings.HasPrefix(eventName, "http."):
		return falcoSourceIngress
	case eventName == "":
		return falcoSourceOther
	}
	// The ebpf receiver's events: process.*, file.*, network.*, privilege.*, …
	return falcoSourceSyscall
}

// renderFalco renders one alert as the body of one POST, as Falco sends them.
func renderFalco(a *Alert, hostname string) ([]byte, error) {
	src := falcoSource(a.EventName)
	fields := map[string]any{}
	for k, v := range a.Attrs {
		if strings.HasPrefix(k, "security_rule.") {
			continue // the rule is in rule, priority and tags
		}
		if name, ok := falcoName(src, k); ok {
			k = name
		}
		fields[k] = v
	}
	host := a.Attr("k8s.node.name")
	if host == "" {
		host = hostname
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return json.Marshal(falcoAlert{
		Time:         a.Time.Format(falcoTimeLayout),
		Rule:         a.Rule,
		Priority:     falcoPriorities[a.Severity], // "" for a record without one
		Source:       src,
		Hostname:     host,
		Tags:         tags,
		Output:       a.Output,
		OutputFields: fields,
	})
}

func falcoName(src, attr string) (string, bool) {
	if n, ok := falcoCommonFields[attr]; ok {
		return n, true
	}
	switch src {
	case falcoSourceSyscall:
		n, ok := falcoSyscallFields[attr]
		return n, ok
	case falcoSourceAudit:
		n, ok := falcoAuditFields[attr]
		return n, ok
	}
	return "", false
}
