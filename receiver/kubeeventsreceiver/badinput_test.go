package kubeeventsreceiver

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8sclient"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/kubeeventsreceiver/internal/metadata"
)

// failures waits for n logged API failures and returns them.
func failures(t *testing.T, tr *testReceiver, msg string, n int) []observer.LoggedEntry {
	t.Helper()
	waitFor(t, "logged failures", func() bool { return tr.logs.FilterMessageSnippet(msg).Len() >= n })
	return tr.logs.FilterMessageSnippet(msg).All()
}

// assertBackoff: each retry waits longer than the one before (factor 2, jitter 0.2).
func assertBackoff(t *testing.T, entries []observer.LoggedEntry) {
	t.Helper()
	var last time.Duration
	for i, e := range entries[:3] {
		d, ok := e.ContextMap()["retry_in"].(time.Duration)
		require.True(t, ok, "retry_in logged")
		if i > 0 {
			assert.Greater(t, d, last, "backoff grows")
		}
		last = d
	}
}

// TestUnreachableAPIServer: nothing listens at the address. Start succeeds (a
// gateway must not die because the apiserver is down), the failure is logged
// with what to check and retried with a growing backoff.
func TestUnreachableAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	tr := startReceiver(t, &rest.Config{Host: "https://" + addr, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}, rcvOpts{})
	got := failures(t, tr, "API call failed; retrying with backoff", 3)
	assertBackoff(t, got)
	m := got[0].ContextMap()
	assert.Contains(t, m["error"], "connection refused")
	assert.Contains(t, m["error"], addr)
	assert.Contains(t, m["hint"], "unreachable")
	assert.Positive(t, counterValue(t, tr, "otelcol_receiver_kube_events_api_errors"))
	assert.Zero(t, tr.sink.LogRecordCount())
}

// TestUnauthorizedAPIServer: a real apiserver that rejects the token (401) and
// one that knows the user but grants nothing (403); with leader election the
// Lease calls fail first and say so.
func TestUnauthorizedAPIServer(t *testing.T) {
	c, _ := cluster(t)

	bad := rest.CopyConfig(c.Config)
	bad.BearerToken = "not-a-token"
	tr := startReceiver(t, bad, rcvOpts{})
	got := failures(t, tr, "API call failed; retrying with backoff", 3)
	assertBackoff(t, got)
	assert.Contains(t, got[0].ContextMap()["error"], "Unauthorized")
	assert.Contains(t, got[0].ContextMap()["hint"], "does not accept our credentials")

	tr = startReceiver(t, c.ConfigAs("mallory"), rcvOpts{})
	got = failures(t, tr, "API call failed; retrying with backoff", 2)
	assert.Contains(t, got[0].ContextMap()["error"], `User "mallory" cannot list resource "events"`)
	assert.Contains(t, got[0].ContextMap()["hint"], "grant list and watch on events")

	tr = startReceiver(t, c.ConfigAs("mallory"), rcvOpts{mutate: func(cfg *Config) {
		cfg.LeaderElection.Enabled = true
		cfg.LeaderElection.LeaseNamespace = "default"
		cfg.LeaderElection.RetryPeriod = 100 * time.Millisecond
		cfg.LeaderElection.RenewDeadline = time.Second
		cfg.LeaderElection.LeaseDuration = 2 * time.Second
	}})
	got = failures(t, tr, "Leader election: reading the Lease failed", 1)
	assert.Contains(t, got[0].ContextMap()["error"], `cannot get resource "leases"`)
	assert.Contains(t, got[0].ContextMap()["hint"], "leases (coordination.k8s.io)")
	assert.Zero(t, tr.sink.LogRecordCount())
}

// TestKubeConfigAuth reads the apiserver and credentials from $KUBECONFIG, as
// auth_type kubeConfig does outside a cluster, and a missing kubeconfig fails Start.
func TestKubeConfigAuth(t *testing.T) {
	c, cs := cluster(t)
	t.Setenv("KUBECONFIG", c.WriteKubeconfig(c.Config))

	kubeConfig := func(cfg *Config) { cfg.AuthType = k8sclient.AuthKubeConfig }
	tr := startReceiver(t, nil, rcvOpts{mutate: kubeConfig})
	createNamespace(t, cs, "kc")
	createEvents(t, cs, "kc", "ev", 1)
	waitFor(t, "the event", func() bool { return occurrencesIn("kc", tr.sink)["ev-0#1"] == 1 })

	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	kubeConfig(cfg)
	r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth_type kubeConfig")
	require.NoError(t, r.Shutdown(context.Background()))
}
