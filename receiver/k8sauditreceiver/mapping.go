package k8sauditreceiver

import (
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// EventName of every record this receiver emits.
const eventName = "k8s.audit"

// Attribute names. Semantic-convention names where one exists, k8s.audit.* for
// the rest; rules read exactly these.
const (
	attrUserName           = "user.name"
	attrUserID             = "user.id"
	attrClientAddress      = "client.address"
	attrUserAgent          = "user_agent.original"
	attrStatusCode         = "http.response.status_code"
	attrNamespace          = "k8s.namespace.name"
	attrPodName            = "k8s.pod.name"
	attrAuditID            = "k8s.audit.id"
	attrStage              = "k8s.audit.stage"
	attrLevel              = "k8s.audit.level"
	attrVerb               = "k8s.audit.verb"
	attrRequestURI         = "k8s.audit.request_uri"
	attrSourceIPs          = "k8s.audit.source_ips"
	attrGroups             = "k8s.audit.user.groups"
	attrUserExtra          = "k8s.audit.user.extra"
	attrImpersonatedName   = "k8s.audit.impersonated_user.name"
	attrImpersonatedGroups = "k8s.audit.impersonated_user.groups"
	attrObjResource        = "k8s.audit.object.resource"
	attrObjSubresource     = "k8s.audit.object.subresource"
	attrObjName            = "k8s.audit.object.name"
	attrObjUID             = "k8s.audit.object.uid"
	attrObjAPIGroup        = "k8s.audit.object.api_group"
	attrObjAPIVersion      = "k8s.audit.object.api_version"
	attrObjResourceVersion = "k8s.audit.object.resource_version"
	attrResponseStatus     = "k8s.audit.response.status"
	attrResponseReason     = "k8s.audit.response.reason"
	attrResponseMessage    = "k8s.audit.response.message"
	attrRequestReceived    = "k8s.audit.request_received_time"
	attrRequestObject      = "k8s.audit.request_object"
	attrResponseObject     = "k8s.audit.response_object"
	attrAnnotations        = "k8s.audit.annotations"
	attrAuthzDecision      = "k8s.audit.authorization.decision"
	attrAuthzReason        = "k8s.audit.authorization.reason"
	attrPSAEnforcePolicy   = "k8s.audit.pod_security.enforce_policy"
	attrPSAAuditViolations = "k8s.audit.pod_security.audit_violations"
	attrPSAExempt          = "k8s.audit.pod_security.exempt"
)

// Annotations the apiserver's authorizer and Pod Security admission add, lifted
// to attributes of their own because rules ask for them most.
var liftedAnnotations = map[string]string{
	"authorization.k8s.io/decision":               attrAuthzDecision,
	"authorization.k8s.io/reason":                 attrAuthzReason,
	"pod-security.kubernetes.io/enforce-policy":   attrPSAEnforcePolicy,
	"pod-security.kubernetes.io/audit-violations": attrPSAAuditViolations,
	"pod-security.kubernetes.io/exempt":           attrPSAExempt,
}

// field maps a JSON string field to the attribute it becomes.
type field struct{ json, attr string }

var (
	eventStrings = []field{
		{"level", attrLevel},
		{"verb", attrVerb},
		{"requestURI", attrRequestURI},
		{"userAgent", attrUserAgent},
		{"requestReceivedTimestamp", attrRequestReceived},
	}
	objectRefStrings = []field{
		{"resource", attrObjResource},
		{"subresource", attrObjSubresource},
		{"namespace", attrNamespace},
		{"name", attrObjName},
		{"uid", attrObjUID},
		{"apiGroup", attrObjAPIGroup},
		{"apiVersion", attrObjAPIVersion},
		{"resourceVersion", attrObjResourceVersion},
	}
	responseStatusStrings = []field{
		{"status", attrResponseStatus},
		{"reason", attrResponseReason},
		{"message", attrResponseMessage},
	}
	eventObjects = []field{
		{"requestObject", attrRequestObject},
		{"responseObject", attrResponseObject},
	}
)

// mapper holds what mapping needs from the config.
type mapper struct {
	keepStage map[string]bool
	redact    bool
	body      []byte // scratch for the summary body
}

// mapEvent validates one audit event and, if its stage is kept, appends its log
// record to out. It returns keep=false for a well-formed event of another stage.
// A field of the wrong type makes the whole event malformed: a half-mapped event
// would mislead a rule more than a reported error does.
func (m *mapper) mapEvent(v *fastjson.Value, out plog.LogRecordSlice) (keep bool, err error) {
	auditID, err := str(v, "auditID")
	if err != nil {
		return false, err
	}
	if auditID == "" {
		return false, errors.New("missing auditID")
	}
	stage, err := str(v, "stage")
	if err != nil {
		return false, err
	}
	if !isValidStage(stage) {
		return false, fmt.Errorf("stage %q is not an audit stage", stage)
	}
	stageTime, err := timestamp(v, "stageTimestamp")
	if err != nil {
		return false, err
	}
	if !m.keepStage[stage] {
		return false, nil
	}

	// Decode into a detached record and move it to out only when it is whole,
	// so that a bad field leaves no half-event behind.
	lr := plog.NewLogRecord()
	lr.SetEventName(eventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(stageTime))
	attrs := lr.Attributes()
	attrs.EnsureCapacity(24)
	attrs.PutStr(attrAuditID, auditID)
	attrs.PutStr(attrStage, stage)

	for _, f := range eventStrings {
		if err := putStr(attrs, f.attr, v, f.json); err != nil {
			return false, err
		}
	}
	if err := mapUser(attrs, v); err != nil {
		return false, err
	}
	if err := mapSourceIPs(attrs, v); err != nil {
		return false, err
	}
	obj, err := mapObjectRef(attrs, v)
	if err != nil {
		return false, err
	}
	if err := mapResponseStatus(attrs, v); err != nil {
		return false, err
	}
	if err := mapAnnotations(attrs, v); err != nil {
		return false, err
	}
	for _, o := range eventObjects {
		// Usually an object; a JSON patch is an array of operations.
		raw := v.Get(o.json)
		if raw == nil || raw.Type() == fastjson.TypeNull {
			continue
		}
		if raw.Type() != fastjson.TypeObject && raw.Type() != fastjson.TypeArray {
			return false, fmt.Errorf("%s: want an object or array, got %s", o.json, raw.Type())
		}
		payload := attrs.PutEmpty(o.attr)
		putValue(payload, raw)
		if m.redact {
			redactPayload(payload, obj)
		}
	}
	lr.Body().SetStr(m.summary(attrs))
	lr.MoveTo(out.AppendEmpty())
	return true, nil
}

func mapUser(attrs pcommon.Map, v *fastjson.Value) error {
	user, err := object(v, "user")
	if err != nil || user == nil {
		return err
	}
	if err := putStr(attrs, attrUserName, user, "username"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if err := putStr(attrs, attrUserID, user, "uid"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if err := putStrings(attrs, attrGroups, user, "groups"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	extra, err := object(user, "extra")
	if err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if extra != nil {
		putObject(attrs.PutEmptyMap(attrUserExtra), extra)
	}

	imp, err := object(v, "impersonatedUser")
	if err != nil || imp == nil {
		return err
	}
	if err := putStr(attrs, attrImpersonatedName, imp, "username"); err != nil {
		return fmt.Errorf("impersonatedUser.%w", err)
	}
	if err := putStrings(attrs, attrImpersonatedGroups, imp, "groups"); err != nil {
		return fmt.Errorf("impersonatedUser.%w", err)
	}
	return nil
}

func mapSourceIPs(attrs pcommon.Map, v *fastjson.Value) error {
	if err := putStrings(attrs, attrSourceIPs, v, "sourceIPs"); err != nil {
		return err
	}
	// The first source IP is the client as the apiserver saw it (X-Forwarded-For
	// entries follow it).
	if ips, ok := attrs.Get(attrSourceIPs); ok && ips.Slice().Len() > 0 {
		attrs.PutStr(attrClientAddress, ips.Slice().At(0).Str())
	}
	return nil
}

// objectRef is what redaction needs to know of the object acted on.
type objectRef struct {
	resource, subresource, apiGroup string
}

func mapObjectRef(attrs pcommon.Map, v *fastjson.Value) (objectRef, error) {
	ref, err := object(v, "objectRef")
	if err != nil || ref == nil {
		return objectRef{}, err
	}
	for _, f := range objectRefStrings {
		if err := putStr(attrs, f.attr, ref, f.json); err != nil {
			return objectRef{}, fmt.Errorf("objectRef.%w", err)
		}
	}
	o := objectRef{
		resource:    string(ref.GetStringBytes("resource")),
		subresource: string(ref.GetStringBytes("subresource")),
		apiGroup:    string(ref.GetStringBytes("apiGroup")),
	}
	// A pod acted on (exec, attach, create, ...) is named with the semconv
	// attribute, so rules and sequences join on it as on kernel events.
	if o.resource == "pods" && o.apiGroup == "" {
		if name, ok := attrs.Get(attrObjName); ok {
			attrs.PutStr(attrPodName, name.Str())
		}
	}
	return o, nil
}

func mapResponseStatus(attrs pcommon.Map, v *fastjson.Value) error {
	status, err := object(v, "responseStatus")
	if err != nil || status == nil {
		return err
	}
	if code := status.Get("code"); code != nil {
		n, err := code.Int64()
		if err != nil {
			return fmt.Errorf("responseStatus.code: %v", err)
		}
		attrs.PutInt(attrStatusCode, n)
	}
	for _, f := range responseStatusStrings {
		if err := putStr(attrs, f.attr, status, f.json); err != nil {
			return fmt.Errorf("responseStatus.%w", err)
		}
	}
	return nil
}

func mapAnnotations(attrs pcommon.Map, v *fastjson.Value) error {
	ann, err := object(v, "annotations")
	if err != nil || ann == nil {
		return err
	}
	all := attrs.PutEmptyMap(attrAnnotations)
	o, _ := ann.Object()
	all.EnsureCapacity(o.Len())
	var typeErr error
	o.Visit(func(key []byte, val *fastjson.Value) {
		s, err := val.StringBytes()
		if err != nil {
			typeErr = fmt.Errorf("annotations.%s: want a string, got %s", key, val.Type())
			return
		}
		all.PutStr(string(key), string(s))
		if attr, ok := liftedAnnotations[string(key)]; ok {
			attrs.PutStr(attr, string(s))
		}
	})
	return typeErr
}

// summary renders a one-line body a person can read in a log view:
// "alice create pods default/nginx -> 201".
func (m *mapper) summary(attrs pcommon.Map) string {
	b := m.body[:0]
	get := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	user := get(attrUserName)
	if user == "" {
		user = "(unknown user)"
	}
	b = append(b, user...)
	b = append(b, ' ')
	b = append(b, get(attrVerb)...)
	if res := get(attrObjResource); res != "" {
		b = append(b, ' ')
		b = append(b, res...)
		if sub := get(attrObjSubresource); sub != "" {
			b = append(b, '/')
			b = append(b, sub...)
		}
		if ns, name := get(attrNamespace), get(attrObjName); ns != "" || name != "" {
			b = append(b, ' ')
			if ns != "" {
				b = append(b, ns...)
				b = append(b, '/')
			}
			b = append(b, name...)
		}
	} else {
		b = append(b, ' ')
		b = append(b, get(attrRequestURI)...)
	}
	if code := get(attrStatusCode); code != "" {
		b = append(b, " -> "...)
		b = append(b, code...)
	}
	m.body = b
	return string(b)
}

// str returns the string at key, "" when absent or null, and an error naming the
// field when it holds another type.
func str(v *fastjson.Value, key string) (string, error) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return "", nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return "", fmt.Errorf("%s: want a string, got %s", key, f.Type())
	}
	return string(b), nil
}

func putStr(attrs pcommon.Map, attr string, v *fastjson.Value, key string) error {
	s, err := str(v, key)
	if err != nil || s == "" {
		return err
	}
	attrs.PutStr(attr, s)
	return nil
}

func putStrings(attrs pcommon.Map, attr string, v *fastjson.Value, key string) error {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	arr, err := f.Array()
	if err != nil {
		return fmt.Errorf("%s: want an array of strings, got %s", key, f.Type())
	}
	s := attrs.PutEmptySlice(attr)
	s.EnsureCapacity(len(arr))
	for i, e := range arr {
		b, err := e.StringBytes()
		if err != nil {
			return fmt.Errorf("%s[%d]: want a string, got %s", key, i, e.Type())
		}
		s.AppendEmpty().SetStr(string(b))
	}
	return nil
}

// object returns the object at key, nil when absent or null.
func object(v *fastjson.Value, key string) (*fastjson.Value, error) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil, nil
	}
	if f.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%s: want an object, got %s", key, f.Type())
	}
	return f, nil
}

func timestamp(v *fastjson.Value, key string) (time.Time, error) {
	s, err := str(v, key)
	if err != nil {
		return time.Time{}, err
	}
	if s == "" {
		return time.Time{}, fmt.Errorf("missing %s", key)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", key, s)
	}
	return t, nil
}

// putObject copies a JSON object into a pcommon map, keeping its structure so
// that rules can look inside (a pod spec's containers, securityContext, volumes).
func putObject(dst pcommon.Map, v *fastjson.Value) {
	o, _ := v.Object()
	dst.EnsureCapacity(o.Len())
	o.Visit(func(key []byte, val *fastjson.Value) {
		putValue(dst.PutEmpty(string(key)), val)
	})
}

func putValue(dst pcommon.Value, v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		dst.SetStr(string(b))
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			dst.SetInt(n)
		} else {
			f, _ := v.Float64()
			dst.SetDouble(f)
		}
	case fastjson.TypeTrue:
		dst.SetBool(true)
	case fastjson.TypeFalse:
		dst.SetBool(false)
	case fastjson.TypeObject:
		putObject(dst.SetEmptyMap(), v)
	case fastjson.TypeArray:
		arr, _ := v.Array()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(arr))
		for _, e := range arr {
			putValue(s.AppendEmpty(), e)
		}
	case fastjson.TypeNull:
		// An empty value is pdata's null.
	}
}
