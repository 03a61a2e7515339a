package rules

import (
	"testing"

	"github.com/stretchr/testify/require"

	packs "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// BenchmarkPackEvaluation evaluates the default k8s_audit pack on the three
// kinds of audit event a busy cluster sends most, with native evaluation and
// with CEL's interpreter alone: what native.go is worth.
func BenchmarkPackEvaluation(b *testing.B) {
	events := map[string]*Event{
		"read": event("k8s.audit", 0, map[string]any{
			"user.name": "system:serviceaccount:kube-system:endpointslice-controller", "k8s.audit.verb": "get",
			"k8s.audit.object.resource": "configmaps", "k8s.namespace.name": "default",
			"http.response.status_code": 200, "k8s.audit.authorization.decision": "allow",
			"client.address": "10.0.0.12", "user_agent.original": "kube-controller-manager/v1.36.3 (linux/amd64)",
		}),
		"lease-renewal": event("k8s.audit", 0, map[string]any{
			"user.name": "system:node:worker-3", "k8s.audit.verb": "update", "k8s.audit.object.resource": "leases",
			"k8s.audit.object.name": "worker-3", "k8s.namespace.name": "kube-node-lease",
			"http.response.status_code": 200, "k8s.audit.authorization.decision": "allow",
		}),
		"pod-create": event("k8s.audit", 0, map[string]any{
			"user.name": "system:serviceaccount:kube-system:replicaset-controller", "k8s.audit.verb": "create",
			"k8s.audit.object.resource": "pods", "k8s.namespace.name": "shop", "http.response.status_code": 201,
			"k8s.audit.request_object": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
				"name": "web", "image": "registry.example.com/web:2.4.1",
				"securityContext": map[string]any{"runAsNonRoot": true},
			}}}},
		}),
	}
	data, _ := packs.Pack("k8s_audit")
	for _, mode := range []struct {
		name    string
		celOnly bool
	}{{"native", false}, {"cel-only", true}} {
		set, err := Load([]Source{{Name: "k8s_audit.yaml", Data: data}}, Options{CELOnly: mode.celOnly})
		require.NoError(b, err)
		e := NewEngine(set, StateConfig{})
		for _, kind := range []string{"read", "lease-renewal", "pod-create"} {
			ev := events[kind]
			b.Run(kind+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if ms := e.Evaluate(ev, nil); len(ms) != 0 {
						b.Fatalf("%s matched %s", kind, ms[0].Rule.Name)
					}
				}
			})
		}
	}
}

// BenchmarkIngressPack evaluates the default ingress pack on an ordinary
// request, as the ingress_log receiver emits it: the cost of its payload
// rules' patterns on every request that matches none.
func BenchmarkIngressPack(b *testing.B) {
	ev := event("http.access", 0, map[string]any{
		"client.address": "198.51.100.4", "http.request.method": "GET", "url.path": "/api/v1/items",
		"url.query": "filter=price%3E10&sort=-created_at&page=2", "http.response.status_code": 200,
		"user_agent.original":        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"k8ssec.http.referer":        "https://shop.example.com/products?page=1",
		"k8ssec.url.normalized":      "/api/v1/items?filter=price>10&sort=-created_at&page=2",
		"k8ssec.url.path.normalized": "/api/v1/items", "k8s.namespace.name": "shop", "k8s.service.name": "web",
	})
	data, _ := packs.Pack("ingress")
	for _, mode := range []struct {
		name    string
		celOnly bool
	}{{"native", false}, {"cel-only", true}} {
		set, err := Load([]Source{{Name: "ingress.yaml", Data: data}}, Options{CELOnly: mode.celOnly})
		require.NoError(b, err)
		e := NewEngine(set, StateConfig{})
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ms := e.Evaluate(ev, nil); len(ms) != 0 {
					b.Fatalf("matched %s", ms[0].Rule.Name)
				}
			}
		})
	}
}

// BenchmarkOpenVocabulary is one condition on a kernel event from a labelled
// pod, read as a typed attribute, as a dyn one (the open vocabulary), as one
// label of the pod and through the labels as a map: what typing costs, and
// what the map, built per event, costs.
func BenchmarkOpenVocabulary(b *testing.B) {
	ev := event("process.exec", 0, map[string]any{"process.command_line": "sh -c id", "app.tier": "gold"})
	for k, v := range map[string]string{"team": "payments", "app.kubernetes.io/name": "checkout", "pod-template-hash": "7d9c"} {
		ev.Resource.PutStr("k8s.pod.label."+k, v)
	}
	ev.Resource.PutStr("k8s.pod.name", "checkout-7d9c")
	for _, c := range []struct{ name, cond string }{
		{"typed", `k8s.pod.name == "checkout-7d9c"`},
		{"dyn", `app.tier == "gold"`},
		{"label", `k8s.pod.label.team == "payments"`},
		{"label-map", `k8s.pod.label["team"] == "payments"`},
		{"has", `has(k8s.pod.label.team)`},
	} {
		for _, mode := range []struct {
			name    string
			celOnly bool
		}{{"native", false}, {"cel-only", true}} {
			set, err := Load([]Source{{Name: "f", Data: []byte(rule("process.exec", c.cond))}}, Options{CELOnly: mode.celOnly})
			require.NoError(b, err)
			e := NewEngine(set, StateConfig{})
			b.Run(c.name+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if ms := e.Evaluate(ev, nil); len(ms) != 1 {
						b.Fatalf("%s: want a match", c.cond)
					}
				}
			})
		}
	}
}
