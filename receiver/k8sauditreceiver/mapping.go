package k8sauditreceiver

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unsafe"

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

// mapper holds what mapping needs from the config, and per-event scratch.
type mapper struct {
	keepStage map[string]bool
	redact    bool
	strs      arena
	sum       summary
	body      []byte // scratch for the summary body
}

// mapEvent validates one audit event and, if its stage is kept, appends its log
// record to out. It returns keep=false for a well-formed event of another stage.
// A field of the wrong type makes the whole event malformed: a half-mapped event
// would mislead a rule more than a reported error does. The caller sizes the
// string arena (m.strs) for the raw JSON v came from.
func (m *mapper) mapEvent(v *fastjson.Value, out plog.LogRecordSlice) (keep bool, err error) {
	// Read what decides whether to map at all without copying anything.
	stageB, err := bytesAt(v, "stage")
	if err != nil {
		return false, err
	}
	stage := stageName(stageB)
	if stage == "" {
		return false, fmt.Errorf("stage %q is not an audit stage", stageB)
	}
	auditID, err := bytesAt(v, "auditID")
	if err != nil {
		return false, err
	}
	if len(auditID) == 0 {
		return false, errors.New("missing auditID")
	}
	stageTime, err := timestamp(v, "stageTimestamp")
	if err != nil {
		return false, err
	}
	if !m.keepStage[stage] {
		return false, nil
	}
	m.sum = summary{}

	// A bad field further down must leave no half-event behind: the record is
	// taken back out of the batch on any error.
	lr := out.AppendEmpty()
	defer func() {
		if err != nil {
			dropLast(out)
		}
	}()
	lr.SetEventName(eventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(stageTime))
	attrs := lr.Attributes()
	attrs.EnsureCapacity(24)
	attrs.PutStr(attrAuditID, m.strs.str(auditID))
	attrs.PutStr(attrStage, stage)

	for _, f := range eventStrings {
		if _, err := m.putStr(attrs, f.attr, v, f.json); err != nil {
			return false, err
		}
	}
	if err := m.mapUser(attrs, v); err != nil {
		return false, err
	}
	if err := m.mapSourceIPs(attrs, v); err != nil {
		return false, err
	}
	obj, err := m.mapObjectRef(attrs, v)
	if err != nil {
		return false, err
	}
	if err := m.mapResponseStatus(attrs, v); err != nil {
		return false, err
	}
	if err := m.mapAnnotations(attrs, v); err != nil {
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
		m.putValue(payload, raw)
		if m.redact {
			redactPayload(payload, obj)
		}
	}
	if verb, ok := attrs.Get(attrVerb); ok {
		m.sum.verb = verb.Str()
	}
	if uri, ok := attrs.Get(attrRequestURI); ok {
		m.sum.uri = uri.Str()
	}
	lr.Body().SetStr(m.summary())
	return true, nil
}

// dropLast removes the last record of s (only on the rare malformed event).
func dropLast(s plog.LogRecordSlice) {
	last, i := s.Len()-1, 0
	s.RemoveIf(func(plog.LogRecord) bool {
		i++
		return i-1 == last
	})
}

func (m *mapper) mapUser(attrs pcommon.Map, v *fastjson.Value) error {
	user, err := object(v, "user")
	if err != nil || user == nil {
		return err
	}
	if m.sum.user, err = m.putStr(attrs, attrUserName, user, "username"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if _, err := m.putStr(attrs, attrUserID, user, "uid"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if _, err := m.putStrings(attrs, attrGroups, user, "groups"); err != nil {
		return fmt.Errorf("user.%w", err)
	}
	extra, err := object(user, "extra")
	if err != nil {
		return fmt.Errorf("user.%w", err)
	}
	if extra != nil {
		m.putObject(attrs.PutEmptyMap(attrUserExtra), extra)
	}

	imp, err := object(v, "impersonatedUser")
	if err != nil || imp == nil {
		return err
	}
	if _, err := m.putStr(attrs, attrImpersonatedName, imp, "username"); err != nil {
		return fmt.Errorf("impersonatedUser.%w", err)
	}
	if _, err := m.putStrings(attrs, attrImpersonatedGroups, imp, "groups"); err != nil {
		return fmt.Errorf("impersonatedUser.%w", err)
	}
	return nil
}

func (m *mapper) mapSourceIPs(attrs pcommon.Map, v *fastjson.Value) error {
	ips, err := m.putStrings(attrs, attrSourceIPs, v, "sourceIPs")
	// The first source IP is the client as the apiserver saw it (X-Forwarded-For
	// entries follow it).
	if err == nil && ips.Len() > 0 {
		attrs.PutStr(attrClientAddress, ips.At(0).Str())
	}
	return err
}

// objectRef is what redaction needs to know of the object acted on.
type objectRef struct {
	resource, subresource, apiGroup string
}

func (m *mapper) mapObjectRef(attrs pcommon.Map, v *fastjson.Value) (objectRef, error) {
	ref, err := object(v, "objectRef")
	if err != nil || ref == nil {
		return objectRef{}, err
	}
	var vals [8]string
	for i, f := range objectRefStrings {
		if vals[i], err = m.putStr(attrs, f.attr, ref, f.json); err != nil {
			return objectRef{}, fmt.Errorf("objectRef.%w", err)
		}
	}
	// Indexes follow objectRefStrings.
	o := objectRef{resource: vals[0], subresource: vals[1], apiGroup: vals[5]}
	m.sum.resource, m.sum.subresource, m.sum.namespace, m.sum.name = vals[0], vals[1], vals[2], vals[3]
	// A pod acted on (exec, attach, create, ...) is named with the semconv
	// attribute, so rules and sequences join on it as on kernel events.
	if o.resource == "pods" && o.apiGroup == "" && vals[3] != "" {
		attrs.PutStr(attrPodName, vals[3])
	}
	return o, nil
}

func (m *mapper) mapResponseStatus(attrs pcommon.Map, v *fastjson.Value) error {
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
		m.sum.code = n
	}
	for _, f := range responseStatusStrings {
		if _, err := m.putStr(attrs, f.attr, status, f.json); err != nil {
			return fmt.Errorf("responseStatus.%w", err)
		}
	}
	return nil
}

func (m *mapper) mapAnnotations(attrs pcommon.Map, v *fastjson.Value) error {
	ann, err := object(v, "annotations")
	if err != nil || ann == nil {
		return err
	}
	all := attrs.PutEmptyMap(attrAnnotations)
	o, _ := ann.Object()
	all.EnsureCapacity(o.Len())
	var typeErr error
	o.Visit(func(key []byte, val *fastjson.Value) {
		b, err := val.StringBytes()
		if err != nil {
			typeErr = fmt.Errorf("annotations.%s: want a string, got %s", key, val.Type())
			return
		}
		s := m.strs.str(b)
		all.PutStr(m.strs.str(key), s)
		if attr, ok := liftedAnnotations[string(key)]; ok { // no allocation: map lookup by []byte conversion
			attrs.PutStr(attr, s)
		}
	})
	return typeErr
}

// summary is what the one-line body names, gathered while mapping.
type summary struct {
	user, verb, resource, subresource, namespace, name, uri string
	code                                                    int64
}

// summary renders a one-line body a person can read in a log view:
// "alice create pods default/nginx -> 201".
func (m *mapper) summary() string {
	s, b := &m.sum, m.body[:0]
	if s.user == "" {
		b = append(b, "(unknown user)"...)
	} else {
		b = append(b, s.user...)
	}
	b = append(b, ' ')
	b = append(b, s.verb...)
	b = append(b, ' ')
	if s.resource == "" {
		b = append(b, s.uri...)
	} else {
		b = append(b, s.resource...)
		if s.subresource != "" {
			b = append(b, '/')
			b = append(b, s.subresource...)
		}
		if s.namespace != "" || s.name != "" {
			b = append(b, ' ')
			if s.namespace != "" {
				b = append(b, s.namespace...)
				b = append(b, '/')
			}
			b = append(b, s.name...)
		}
	}
	if s.code != 0 {
		b = append(b, " -> "...)
		b = strconv.AppendInt(b, s.code, 10)
	}
	m.body = b
	return string(b)
}

// bytesAt returns the string at key as a view into the parser's buffer (nil
// when absent or null), and an error naming the field when it holds another type.
func bytesAt(v *fastjson.Value, key string) ([]byte, error) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil, nil
	}
	b, err := f.StringBytes()
	if err != nil {
		return nil, fmt.Errorf("%s: want a string, got %s", key, f.Type())
	}
	return b, nil
}

// str is bytesAt copied into the event's arena.
func (m *mapper) str(v *fastjson.Value, key string) (string, error) {
	b, err := bytesAt(v, key)
	return m.strs.str(b), err
}

func (m *mapper) putStr(attrs pcommon.Map, attr string, v *fastjson.Value, key string) (string, error) {
	s, err := m.str(v, key)
	if err != nil || s == "" {
		return "", err
	}
	attrs.PutStr(attr, s)
	return s, nil
}

func (m *mapper) putStrings(attrs pcommon.Map, attr string, v *fastjson.Value, key string) (pcommon.Slice, error) {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return pcommon.NewSlice(), nil
	}
	arr, err := f.Array()
	if err != nil {
		return pcommon.NewSlice(), fmt.Errorf("%s: want an array of strings, got %s", key, f.Type())
	}
	s := attrs.PutEmptySlice(attr)
	s.EnsureCapacity(len(arr))
	for i, e := range arr {
		b, err := e.StringBytes()
		if err != nil {
			return s, fmt.Errorf("%s[%d]: want a string, got %s", key, i, e.Type())
		}
		s.AppendEmpty().SetStr(m.strs.str(b))
	}
	return s, nil
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
	b, err := bytesAt(v, key)
	if err != nil {
		return time.Time{}, err
	}
	if len(b) == 0 {
		return time.Time{}, fmt.Errorf("missing %s", key)
	}
	t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(b), len(b))) // not retained
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time", key, b)
	}
	return t, nil
}

// putObject copies a JSON object into a pcommon map, keeping its structure so
// that rules can look inside (a pod spec's containers, securityContext, volumes).
func (m *mapper) putObject(dst pcommon.Map, v *fastjson.Value) {
	o, _ := v.Object()
	dst.EnsureCapacity(o.Len())
	o.Visit(func(key []byte, val *fastjson.Value) {
		m.putValue(dst.PutEmpty(m.strs.str(key)), val)
	})
}

func (m *mapper) putValue(dst pcommon.Value, v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		dst.SetStr(m.strs.str(b))
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
		m.putObject(dst.SetEmptyMap(), v)
	case fastjson.TypeArray:
		arr, _ := v.Array()
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(arr))
		for _, e := range arr {
			m.putValue(s.AppendEmpty(), e)
		}
	case fastjson.TypeNull:
		// An empty value is pdata's null.
	}
}

// arena hands out strings as views into one allocation sized to the raw JSON
// they come from (an event, or a whole webhook batch), which they cannot
// outgrow: unescaping only shrinks. One allocation instead of one per string is
// much of the mapping's speed. The allocation lives as long as any string of
// it, so a component that keeps a few strings of a record for long (rule state)
// should clone them.
type arena struct {
	buf  []byte
	size int
}

// reset starts a new arena of size bytes, allocated only once a string is
// asked for, so that filtered and malformed events cost nothing.
func (a *arena) reset(size int) { a.buf, a.size = nil, size }

func (a *arena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if a.buf == nil {
		a.buf = make([]byte, 0, a.size)
	}
	if len(a.buf)+len(b) > cap(a.buf) {
		return string(b) // not reached for a well-sized arena; stays correct if it is
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}
