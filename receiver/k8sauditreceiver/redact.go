package k8sauditreceiver

import "go.opentelemetry.io/collector/pdata/pcommon"

// redacted replaces a credential's value; keys stay so that an analyst still
// sees which entries of a Secret were read or written.
const redacted = "<redacted>"

// lastApplied is kubectl's copy of the whole object, Secret data included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// redactPayload removes credentials from a request or response object in place:
// Secret data and stringData (also inside lists and patches), kubectl's
// last-applied copy of a Secret, and the tokens of TokenRequest and TokenReview.
// It goes by the object's kind and, for patches that carry no kind, by the
// resource the audit event names.
func redactPayload(v pcommon.Value, ref objectRef) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		m := v.Map()
		switch kindOf(m) {
		case "Secret":
			redactSecret(m)
		case "SecretList":
			redactEach(m, "items", redactSecret)
		case "TokenRequest":
			redactPath(m, "status", "token")
		case "TokenReview":
			redactPath(m, "spec", "token")
		case "":
			switch {
			case ref.apiGroup == "" && ref.resource == "secrets":
				redactSecret(m) // a merge or strategic-merge patch
			case ref.resource == "serviceaccounts" && ref.subresource == "token":
				redactPath(m, "status", "token")
			case ref.resource == "tokenreviews":
				redactPath(m, "spec", "token")
			}
		}
	case pcommon.ValueTypeSlice:
		// A JSON patch: every value written to a Secret may be secret.
		if ref.apiGroup == "" && ref.resource == "secrets" {
			ops := v.Slice()
			for i := 0; i < ops.Len(); i++ {
				if op := ops.At(i); op.Type() == pcommon.ValueTypeMap {
					if val, ok := op.Map().Get("value"); ok {
						val.SetStr(redacted)
					}
				}
			}
		}
	}
}

func kindOf(m pcommon.Map) string {
	if k, ok := m.Get("kind"); ok && k.Type() == pcommon.ValueTypeStr {
		return k.Str()
	}
	return ""
}

func redactSecret(m pcommon.Map) {
	for _, key := range []string{"data", "stringData"} {
		if d, ok := m.Get(key); ok {
			redactLeaves(d)
		}
	}
	if md, ok := m.Get("metadata"); ok && md.Type() == pcommon.ValueTypeMap {
		redactPath(md.Map(), "annotations", lastApplied)
	}
}

// redactLeaves replaces every value below v, keeping map keys.
func redactLeaves(v pcommon.Value) {
	if v.Type() != pcommon.ValueTypeMap {
		v.SetStr(redacted)
		return
	}
	v.Map().Range(func(_ string, e pcommon.Value) bool {
		e.SetStr(redacted)
		return true
	})
}

// redactPath replaces the value at m[a][b] when it exists.
func redactPath(m pcommon.Map, a, b string) {
	if inner, ok := m.Get(a); ok && inner.Type() == pcommon.ValueTypeMap {
		if leaf, ok := inner.Map().Get(b); ok {
			leaf.SetStr(redacted)
		}
	}
}

func redactEach(m pcommon.Map, key string, f func(pcommon.Map)) {
	items, ok := m.Get(key)
	if !ok || items.Type() != pcommon.ValueTypeSlice {
		return
	}
	for i := 0; i < items.Slice().Len(); i++ {
		if it := items.Slice().At(i); it.Type() == pcommon.ValueTypeMap {
			f(it.Map())
		}
	}
}
