package securityrulesprocessor

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc"
)

// otlpSink is a rules replica as the front tier sees it: an OTLP/gRPC server
// on loopback that counts what it receives.
type otlpSink struct {
	plogotlp.UnimplementedGRPCServer
	records atomic.Int64
}

func (s *otlpSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.records.Add(int64(req.Logs().LogRecordCount()))
	return plogotlp.NewExportResponse(), nil
}

func startSink(b *testing.B) (*otlpSink, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	srv := grpc.NewServer()
	sink := &otlpSink{}
	plogotlp.RegisterGRPCServer(srv, sink)
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(srv.Stop)
	return sink, l.Addr().String()
}

// queue is the OTLP exporters' sending queue: none (each request is one RPC,
// synchronous), or batched (requests gathered per endpoint, up to 1000
// records or 50 ms), which the loadbalancing exporter needs: it sends one
// request per trace ID of a batch, here per key.
func queue(batched bool) configoptional.Optional[exporterhelper.QueueBatchConfig] {
	if !batched {
		return configoptional.None[exporterhelper.QueueBatchConfig]()
	}
	q := exporterhelper.NewDefaultQueueConfig()
	q.BlockOnOverflow = true // a full queue waits, as the sync path does
	q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: 50 * time.Millisecond, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 1000})
	return configoptional.Some(q)
}

func otlpTo(b *testing.B, batched bool, endpoint string) exporter.Logs {
	f := otlpexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpexporter.Config)
	cfg.ClientConfig.Endpoint = endpoint
	cfg.ClientConfig.TLS.Insecure = true
	cfg.QueueConfig = queue(batched)
	cfg.RetryConfig.Enabled = false
	e, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	return e
}

func loadBalancingTo(b *testing.B, batched bool, endpoints ...string) exporter.Logs {
	f := loadbalancingexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*loadbalancingexporter.Config)
	cfg.Resolver.Static = configoptional.Some(loadbalancingexporter.StaticResolver{Hostnames: endpoints})
	cfg.Protocol.OTLP.ClientConfig.TLS.Insecure = true
	cfg.Protocol.OTLP.QueueConfig = queue(batched)
	cfg.Protocol.OTLP.RetryConfig.Enabled = false
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	e, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(b, err)
	return e
}

// failedLogins is a batch of n 401s from clients distinct addresses: every
// event feeds a threshold (K8SA-0005, by client.address), so every one is routed.
func failedLogins(n, clients int) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetEventName("k8s.audit")
		lr.SetTimestamp(1e18)
		a := lr.Attributes()
		a.PutStr("k8s.audit.id", fmt.Sprintf("7f3c1a52-%012x", i))
		a.PutStr("k8s.audit.verb", "list")
		a.PutStr("user.name", "system:anonymous")
		a.PutStr("client.address", fmt.Sprintf("198.51.%d.%d", i%clients/250, i%clients%250))
		a.PutStr("user_agent.original", "curl/8.5.0")
		a.PutInt("http.response.status_code", 401)
	}
	return ld
}

// BenchmarkRouteToRulesTier is what the front tier adds per event to reach the
// rules tier by key (security_rules with tier: route, then contrib's
// loadbalancing exporter over two rules replicas), against the same events
// sent without load balancing (the otlp exporter to one replica). Both over
// real gRPC on loopback to sinks that only count; the time runs until the
// sinks have every record.
func BenchmarkRouteToRulesTier(b *testing.B) {
	const batch = 1000
	streams := map[string]plog.Logs{
		"keyed":   failedLogins(batch, 500),  // every event routed, 500 keys a batch
		"cluster": auditStream(batch, false), // a busy cluster's audit stream: few events feed a stateful rule
	}
	for _, stream := range []string{"keyed", "cluster"} {
		for _, batched := range []bool{false, true} {
			name := stream + map[bool]string{false: "/sync", true: "/batched"}[batched]
			in := streams[stream]
			b.Run(name+"/otlp", func(b *testing.B) {
				s, addr := startSink(b)
				benchExport(b, in, nil, otlpTo(b, batched, addr), s)
			})
			b.Run(name+"/route+loadbalancing", func(b *testing.B) {
				s1, a1 := startSink(b)
				s2, a2 := startSink(b)
				cfg := createDefaultConfig()
				cfg.Rules = []string{"k8s_audit", "k8s_events", "ingress", "correlation"}
				cfg.Tier = TierRoute
				cfg.ReloadInterval = 0
				require.NoError(b, cfg.Validate())
				p, err := newRulesProcessor(processortest.NewNopSettings(NewFactory().Type()), cfg, nil)
				require.NoError(b, err)
				route := func(ld plog.Logs) plog.Logs { return routeByKey(p.running.Load().engine, ld) }
				benchExport(b, in, route, loadBalancingTo(b, batched, a1, a2), s1, s2)
			})
		}
	}
}

// benchExport times route (if any) and the export of copies of in, per event
// of in, until the sinks have received all that was sent.
func benchExport(b *testing.B, in plog.Logs, route func(plog.Logs) plog.Logs, e exporter.Logs, sinks ...*otlpSink) {
	require.NoError(b, e.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { require.NoError(b, e.Shutdown(context.Background())) })
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	received := func() (n int64) {
		for _, s := range sinks {
			n += s.records.Load()
		}
		return n
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sent int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i%32 == 0 {
			runtime.GC()
		}
		ld := plog.NewLogs()
		in.CopyTo(ld)
		b.StartTimer()
		if route != nil {
			ld = route(ld)
		}
		sent += int64(ld.LogRecordCount())
		if err := e.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	for received() < sent {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(in.LogRecordCount()*b.N), "ns/event")
}
