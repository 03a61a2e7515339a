package securityrulesprocessor

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

// ottlConditions are bench_rules.yaml's ten conditions in OTTL, as a user of
// contrib's filter processor would write them.
var ottlConditions = []string{
	`attributes["k8s.audit.object.resource"] == "secrets" and attributes["k8s.audit.verb"] == "get" and not IsMatch(attributes["user.name"], "^system:")`,
	`attributes["k8s.audit.object.resource"] == "pods" and attributes["k8s.audit.object.subresource"] == "exec"`,
	`attributes["k8s.audit.object.resource"] == "pods" and attributes["k8s.audit.object.subresource"] == "attach"`,
	`attributes["k8s.audit.object.resource"] == "pods" and attributes["k8s.audit.object.subresource"] == "portforward"`,
	`attributes["k8s.audit.object.resource"] == "clusterrolebindings" and attributes["k8s.audit.verb"] == "create" and attributes["k8s.audit.request_object"]["roleRef"]["name"] == "cluster-admin"`,
	`attributes["k8s.audit.object.resource"] == "namespaces" and attributes["k8s.audit.verb"] == "delete"`,
	`attributes["user.name"] == "system:anonymous"`,
	`attributes["k8s.audit.object.resource"] == "services" and attributes["k8s.audit.verb"] == "create" and attributes["k8s.audit.request_object"]["spec"]["type"] == "NodePort"`,
	`attributes["k8s.audit.object.resource"] == "pods" and attributes["k8s.audit.verb"] == "create" and attributes["k8s.audit.request_object"]["spec"]["hostNetwork"] == true`,
	`attributes["k8s.audit.object.resource"] == "mutatingwebhookconfigurations" and (attributes["k8s.audit.verb"] == "create" or attributes["k8s.audit.verb"] == "update" or attributes["k8s.audit.verb"] == "patch")`,
}

// auditStream is a batch of audit events as a busy cluster sends them: reads
// and lease renewals by controllers and nodes, pod creates by the ReplicaSet
// controller, and (unless nonMatching) one event in twenty that a rule flags.
func auditStream(n int, nonMatching bool) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.cluster.name", "prod")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < n; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName("k8s.audit")
		lr.SetTimestamp(1e18)
		a := lr.Attributes()
		a.PutStr("k8s.audit.id", fmt.Sprintf("7f3c1a52-%012x", i))
		a.PutStr("k8s.audit.stage", "ResponseComplete")
		a.PutStr("k8s.audit.level", "Metadata")
		a.PutStr("client.address", "10.0.0.12")
		a.PutStr("user_agent.original", "kube-controller-manager/v1.36.3 (linux/amd64)")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("k8s.audit.authorization.decision", "allow")
		switch r := i % 20; {
		case r < 11:
			a.PutStr("user.name", "system:serviceaccount:kube-system:endpointslice-controller")
			a.PutStr("k8s.audit.verb", []string{"get", "list", "watch"}[r%3])
			a.PutStr("k8s.audit.object.resource", []string{"endpointslices", "services", "configmaps", "pods"}[r%4])
			a.PutStr("k8s.namespace.name", "default")
		case r < 16:
			a.PutStr("user.name", "system:node:worker-3")
			a.PutStr("k8s.audit.verb", "update")
			a.PutStr("k8s.audit.object.resource", "leases")
			a.PutStr("k8s.audit.object.name", "worker-3")
			a.PutStr("k8s.namespace.name", "kube-node-lease")
		case r < 19 || nonMatching:
			a.PutStr("user.name", "system:serviceaccount:kube-system:replicaset-controller")
			a.PutStr("k8s.audit.verb", "create")
			a.PutStr("k8s.audit.object.resource", "pods")
			a.PutStr("k8s.audit.object.name", fmt.Sprintf("web-%d", i))
			a.PutStr("k8s.namespace.name", "shop")
			a.PutInt("http.response.status_code", 201)
			spec := a.PutEmptyMap("k8s.audit.request_object").PutEmptyMap("spec")
			c := spec.PutEmptySlice("containers").AppendEmpty().SetEmptyMap()
			c.PutStr("name", "web")
			c.PutStr("image", "registry.example.com/web:2.4.1")
			c.PutEmptyMap("securityContext").PutBool("runAsNonRoot", true)
		default:
			a.PutStr("user.name", "alice@example.com")
			a.PutStr("k8s.audit.verb", "get")
			a.PutStr("k8s.audit.object.resource", "secrets")
			a.PutStr("k8s.audit.object.name", "db-password")
			a.PutStr("k8s.namespace.name", "shop")
		}
	}
	return ld
}

func benchConsume(b *testing.B, p processor.Logs, nonMatching bool) {
	const batch = 1000
	in := auditStream(batch, nonMatching)
	require.NoError(b, p.Start(context.Background(), nil))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()
	// The copies below are the benchmark's garbage, not the processors': the
	// collector runs between timed runs, so that neither processor is charged
	// for sweeping up after them.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if i%32 == 0 {
			runtime.GC()
		}
		ld := plog.NewLogs()
		in.CopyTo(ld) // both processors change what they are given
		b.StartTimer()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func rulesProcessorFor(b *testing.B, rules ...string) processor.Logs {
	cfg := createDefaultConfig()
	cfg.Rules = rules
	cfg.ReloadInterval = 0
	require.NoError(b, cfg.Validate())
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(NewFactory().Type()), cfg, consumertest.NewNop())
	require.NoError(b, err)
	return p
}

func filterProcessor(b *testing.B) processor.Logs {
	f := filterprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*filterprocessor.Config)
	cfg.Logs.LogConditions = ottlConditions
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	require.NoError(b, err)
	return p
}

// BenchmarkRules compares, on one stream, the ten conditions of
// testdata/bench_rules.yaml in this processor with the same ten in contrib's
// filter processor (OTTL), then the whole default k8s_audit pack.
func BenchmarkRules(b *testing.B) {
	for _, stream := range []struct {
		name        string
		nonMatching bool
	}{{"mixed", false}, {"non-matching", true}} {
		b.Run("ten-conditions/security_rules/"+stream.name, func(b *testing.B) {
			benchConsume(b, rulesProcessorFor(b, "testdata/bench_rules.yaml"), stream.nonMatching)
		})
		b.Run("ten-conditions/filter-ottl/"+stream.name, func(b *testing.B) {
			benchConsume(b, filterProcessor(b), stream.nonMatching)
		})
		b.Run("k8s_audit-pack/security_rules/"+stream.name, func(b *testing.B) {
			benchConsume(b, rulesProcessorFor(b, "k8s_audit"), stream.nonMatching)
		})
	}
}

// BenchmarkHarness is what BenchmarkRules' harness itself costs a run: the
// batch's copy (made between timed runs there, timed here) and a processor
// that passes it through. Subtract its instruction count (callgrind, same
// number of runs) from a processor's to get the processor's own.
func BenchmarkHarness(b *testing.B) {
	for _, stream := range []struct {
		name        string
		nonMatching bool
	}{{"mixed", false}, {"non-matching", true}} {
		b.Run(stream.name, func(b *testing.B) {
			f := processortest.NewNopFactory()
			p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), consumertest.NewNop())
			require.NoError(b, err)
			in := auditStream(1000, stream.nonMatching)
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			for i := 0; b.Loop(); i++ {
				if i%32 == 0 {
					runtime.GC()
				}
				ld := plog.NewLogs()
				in.CopyTo(ld)
				if err := p.ConsumeLogs(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeyFlood sends failed logins from a new address every event (an
// attacker rotating addresses, or a scan) to the pack's threshold rule keyed on
// client.address: the state stays within state.max_keys, so the heap after the
// flood stays flat however many addresses come.
func BenchmarkKeyFlood(b *testing.B) {
	p := rulesProcessorFor(b, "k8s_audit")
	require.NoError(b, p.Start(context.Background(), nil))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 1000; i++ {
		lr := lrs.AppendEmpty()
		lr.SetEventName("k8s.audit")
		lr.SetTimestamp(1e18)
		lr.Attributes().PutInt("http.response.status_code", 401)
		lr.Attributes().PutStr("k8s.audit.verb", "get")
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		batch := plog.NewLogs()
		ld.CopyTo(batch)
		recs := batch.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < recs.Len(); i++ {
			n++
			recs.At(i).Attributes().PutStr("client.address", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
		}
		if err := p.ConsumeLogs(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n), "keys")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
}

// kernelStream is a batch of file.open events as the ebpf receiver sends
// them: runs of events by one process, each run a resource carrying the
// process, its parent, container and pod; a record carries the file only.
// None of them matches a rule of the runtime pack.
func kernelStream(n, run int) plog.Logs {
	ld := plog.NewLogs()
	var lrs plog.LogRecordSlice
	for i := 0; i < n; i++ {
		if i%run == 0 {
			rl := ld.ResourceLogs().AppendEmpty()
			r := rl.Resource().Attributes()
			pid := int64(4000 + i/run)
			r.PutStr("container.id", "3f9d1c0a7b2e4d6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f")
			r.PutStr("container.runtime.name", "containerd")
			r.PutStr("k8s.pod.uid", "6b1f2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d")
			r.PutStr("k8s.pod.name", "web-7d9f8b6c5d-x2x4z")
			r.PutStr("k8s.namespace.name", "shop")
			r.PutBool("k8ssec.process.host", false)
			r.PutInt("process.pid", pid)
			r.PutInt("process.parent_pid", 1)
			r.PutInt("process.user.id", 101)
			r.PutInt("process.real_user.id", 101)
			r.PutInt("process.group.id", 101)
			r.PutInt("process.real_group.id", 101)
			r.PutStr("k8ssec.process.comm", "nginx")
			r.PutInt("k8ssec.linux.cgroup.id", 81234)
			r.PutInt("k8ssec.linux.mnt_ns", 4026532201)
			r.PutInt("k8ssec.linux.pid_ns", 4026532204)
			r.PutStr("process.executable.path", "/usr/sbin/nginx")
			r.PutStr("process.executable.name", "nginx")
			r.PutStr("process.command_line", "nginx: worker process")
			r.PutStr("k8ssec.process.exec_id", fmt.Sprintf("node-a:0123abcd:1000:%d", pid))
			r.PutStr("process.parent.executable.path", "/usr/sbin/nginx")
			r.PutStr("process.parent.executable.name", "nginx")
			r.PutStr("process.parent.command_line", "nginx: master process nginx -g daemon off;")
			lrs = rl.ScopeLogs().AppendEmpty().LogRecords()
		}
		lr := lrs.AppendEmpty()
		lr.SetEventName("file.open")
		lr.SetTimestamp(1e18)
		a := lr.Attributes()
		a.PutStr("file.path", "/etc/nginx/mime.types")
		a.PutStr("file.name", "mime.types")
		a.PutStr("file.directory", "/etc/nginx")
		a.PutInt("k8ssec.syscall.result", 5)
		a.PutInt("k8ssec.file.flags", 0o2000000)
		a.PutEmptySlice("k8ssec.file.intent").AppendEmpty().SetStr("read")
		lr.Body().SetStr("/etc/nginx/mime.types")
	}
	return ld
}

// BenchmarkRuntimePack is the agent's rules: the whole runtime pack on a
// stream of kernel events, runs of 100 events per process.
func BenchmarkRuntimePack(b *testing.B) {
	p := rulesProcessorFor(b, "runtime")
	in := kernelStream(1000, 100)
	require.NoError(b, p.Start(context.Background(), nil))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if i%32 == 0 {
			runtime.GC()
		}
		ld := plog.NewLogs()
		in.CopyTo(ld)
		b.StartTimer()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
