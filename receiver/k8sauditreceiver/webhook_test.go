package k8sauditreceiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver/internal/metadatatest"
)

// freeAddr returns a loopback address nothing listens on yet.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startWebhook starts a real k8s_audit receiver made by its factory, with its
// webhook on a free loopback port, and returns the URL to post to.
func startWebhook(t *testing.T, tt *componenttest.Telemetry, next consumer.Logs, edit func(*Config)) string {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Webhook.NetAddr.Endpoint = freeAddr(t)
	if edit != nil {
		edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	rcv, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	scheme := "http"
	if cfg.Webhook.TLS.HasValue() {
		scheme = "https"
	}
	return scheme + "://" + cfg.Webhook.NetAddr.Endpoint + cfg.Webhook.Path
}

func post(t *testing.T, client *http.Client, url string, body []byte) (int, http.Header, webhookReply) {
	t.Helper()
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var reply webhookReply
	require.NoError(t, json.Unmarshal(raw, &reply), string(raw))
	return resp.StatusCode, resp.Header, reply
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	return tt
}

func sum(n int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(attrs...)}
}

func TestWebhookAcceptsEventList(t *testing.T) {
	tt := newTelemetry(t)
	sink := new(consumertest.LogsSink)
	url := startWebhook(t, tt, sink, nil)

	received := auditEvent("rr")
	received.Stage = "RequestReceived"
	code, _, reply := post(t, http.DefaultClient, url, eventList(t, auditEvent("a"), received, auditEvent("b")))
	require.Equal(t, http.StatusOK, code, reply.Errors)
	assert.Equal(t, webhookReply{Accepted: 2, Filtered: 1}, reply)
	require.Equal(t, 2, sink.LogRecordCount())
	records := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0)
	assert.Equal(t, "github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver", records.Scope().Name())
	assert.Equal(t, "a", idOf(records.LogRecords().At(0)))
	assert.Equal(t, "b", idOf(records.LogRecords().At(1)))

	webhook := attribute.String("source", "webhook")
	metadatatest.AssertEqualReceiverK8sAuditEventsReceived(t, tt, []metricdata.DataPoint[int64]{sum(3, webhook)}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverK8sAuditEventsFiltered(t, tt, []metricdata.DataPoint[int64]{sum(1, webhook)}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverK8sAuditWebhookRequests(t, tt,
		[]metricdata.DataPoint[int64]{sum(1, attribute.Int("http.response.status_code", 200))}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestWebhookRefusesBadRequests(t *testing.T) {
	tt := newTelemetry(t)
	sink := new(consumertest.LogsSink)
	url := startWebhook(t, tt, sink, func(c *Config) { c.Webhook.MaxRequestBodySize = 4096 })

	code, _, reply := post(t, http.DefaultClient, url, []byte(`{"kind":"EventList",`))
	assert.Equal(t, http.StatusBadRequest, code)
	require.Len(t, reply.Errors, 1)
	assert.Contains(t, reply.Errors[0], "malformed audit payload: invalid JSON")

	code, _, reply = post(t, http.DefaultClient, url, []byte(`{"kind":"PodList","apiVersion":"audit.k8s.io/v1","items":[]}`))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, []string{`malformed audit payload: kind "PodList", want EventList or Event`}, reply.Errors)

	code, _, reply = post(t, http.DefaultClient, url, []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[]}`))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, []string{`malformed audit payload: apiVersion "audit.k8s.io/v1beta1", want "audit.k8s.io/v1"`}, reply.Errors)

	code, _, reply = post(t, http.DefaultClient, url, eventList(t, auditEvent("1"), auditEvent("2"), auditEvent("3"), auditEvent("4")))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Equal(t, []string{"body is over max_request_body_size of 4096 bytes"}, reply.Errors)

	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))

	assert.Equal(t, 0, sink.LogRecordCount(), "nothing of a refused request reaches the pipeline")
	metadatatest.AssertEqualReceiverK8sAuditWebhookRequests(t, tt, []metricdata.DataPoint[int64]{
		sum(3, attribute.Int("http.response.status_code", 400)),
		sum(1, attribute.Int("http.response.status_code", 413)),
		sum(1, attribute.Int("http.response.status_code", 405)),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverK8sAuditEventsMalformed(t, tt,
		[]metricdata.DataPoint[int64]{sum(3, attribute.String("source", "webhook"))}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestWebhookPassesGoodEventsAroundABadOne(t *testing.T) {
	tt := newTelemetry(t)
	sink := new(consumertest.LogsSink)
	url := startWebhook(t, tt, sink, nil)

	good1, _ := json.Marshal(auditEvent("good-1"))
	good2, _ := json.Marshal(auditEvent("good-2"))
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + string(good1) +
		`,{"auditID":"bad","stage":"ResponseComplete","stageTimestamp":"noon"},` + string(good2) + `]}`
	code, _, reply := post(t, http.DefaultClient, url, []byte(body))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, webhookReply{Accepted: 2, Malformed: 1,
		Errors: []string{`event 1 (auditID bad): stageTimestamp "noon" is not an RFC 3339 time`}}, reply)
	assert.Equal(t, 2, sink.LogRecordCount())
	metadatatest.AssertEqualReceiverK8sAuditEventsMalformed(t, tt,
		[]metricdata.DataPoint[int64]{sum(1, attribute.String("source", "webhook"))}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// flakyConsumer refuses the first n batches with err, then accepts.
type flakyConsumer struct {
	consumertest.LogsSink
	refusals atomic.Int32
	err      error
}

func (f *flakyConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if f.refusals.Add(-1) >= 0 {
		return f.err
	}
	return f.LogsSink.ConsumeLogs(ctx, ld)
}

func TestWebhookAsksForRetryUnderBackpressure(t *testing.T) {
	next := &flakyConsumer{err: errors.New("data refused due to high memory usage")}
	next.refusals.Store(1)
	url := startWebhook(t, newTelemetry(t), next, nil)
	body := eventList(t, auditEvent("a"))

	code, header, reply := post(t, http.DefaultClient, url, body)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "1", header.Get("Retry-After"))
	assert.Equal(t, 0, reply.Accepted)
	assert.Equal(t, []string{"pipeline refused the batch, retry: data refused due to high memory usage"}, reply.Errors)
	assert.Equal(t, 0, next.LogRecordCount())

	// The apiserver retries the same batch; now it goes through.
	code, _, reply = post(t, http.DefaultClient, url, body)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, reply.Accepted)
	assert.Equal(t, 1, next.LogRecordCount())
}

func TestWebhookPermanentPipelineErrorIsNotRetryable(t *testing.T) {
	next := &flakyConsumer{err: consumererror.NewPermanent(errors.New("schema mismatch"))}
	next.refusals.Store(1)
	url := startWebhook(t, newTelemetry(t), next, nil)
	code, header, reply := post(t, http.DefaultClient, url, eventList(t, auditEvent("a")))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Empty(t, header.Get("Retry-After"))
	assert.Equal(t, []string{"pipeline rejected the batch: Permanent error: schema mismatch"}, reply.Errors)
}

func TestWebhookMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t)
	certPEM, keyPEM := ca.Server(t, "127.0.0.1")
	serverCert, serverKey := testcerts.WriteFiles(t, dir, "server", certPEM, keyPEM)
	caFile := dir + "/ca.crt"
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM(), 0o600))

	sink := new(consumertest.LogsSink)
	url := startWebhook(t, newTelemetry(t), sink, func(c *Config) {
		c.Webhook.TLS = configoptional.Some(configtls.ServerConfig{
			Config:       configtls.Config{CertFile: serverCert, KeyFile: serverKey},
			ClientCAFile: caFile,
		})
	})
	require.True(t, strings.HasPrefix(url, "https://"))

	clientWith := func(certPEM, keyPEM []byte) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			require.NoError(t, err)
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}

	// The apiserver, with a client certificate from the trusted CA.
	code, _, reply := post(t, clientWith(ca.Client(t, "kube-apiserver")), url, eventList(t, auditEvent("mtls")))
	require.Equal(t, http.StatusOK, code, reply.Errors)
	assert.Equal(t, 1, sink.LogRecordCount())

	// Anyone without a certificate, or with one from another CA, is turned away
	// at the handshake. With TLS 1.3 the server judges the client's certificate
	// after the client has finished its side, so the server's alert is read, not
	// raced against writing a request (which may fail first with a broken pipe).
	handshakeError := func(certPEM, keyPEM []byte) error {
		endpoint := strings.SplitN(strings.TrimPrefix(url, "https://"), "/", 2)[0]
		conn, err := tls.Dial("tcp", endpoint, clientWith(certPEM, keyPEM).Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			return err // TLS 1.2: within the handshake
		}
		defer conn.Close()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	err := handshakeError(nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate required")

	other := testcerts.NewCA(t)
	err = handshakeError(other.Client(t, "intruder"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown certificate authority")

	// And nothing they send gets through.
	for _, c := range []*http.Client{clientWith(nil, nil), clientWith(other.Client(t, "intruder"))} {
		_, err = c.Post(url, "application/json", bytes.NewReader(eventList(t, auditEvent("y"))))
		require.Error(t, err)
	}
	assert.Equal(t, 1, sink.LogRecordCount())
}
