package k8sauditreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// retryAfterSeconds is what a refused batch asks the apiserver to wait. The
// apiserver's webhook backend retries every failed batch with its own backoff;
// client-go also honours Retry-After on 429 and 503.
const retryAfterSeconds = "1"

// webhookServer answers the kube-apiserver's audit webhook backend.
type webhookServer struct {
	r      *auditReceiver
	obs    *receiverhelper.ObsReport
	server *http.Server
	wg     sync.WaitGroup
}

func (s *webhookServer) start(ctx context.Context, host component.Host) error {
	cfg := &s.r.cfg.Webhook
	ln, err := cfg.ToListener(ctx)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.Path, s.handle)
	s.server, err = cfg.ToServer(ctx, host.GetExtensions(), s.r.set.TelemetrySettings, mux)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	s.r.set.Logger.Info("Audit webhook listening", zap.String("address", ln.Addr().String()),
		zap.String("path", cfg.Path), zap.Bool("tls", cfg.TLS.HasValue()))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (s *webhookServer) shutdown(ctx context.Context) error {
	if s.server == nil {
		return nil
	}
	err := s.server.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// webhookReply is the JSON body of every answer: what was taken and why not.
type webhookReply struct {
	Accepted  int      `json:"accepted"`
	Filtered  int      `json:"filtered,omitempty"`
	Malformed int      `json:"malformed,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}

func (s *webhookServer) handle(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reply(req.Context(), w, http.StatusMethodNotAllowed, webhookReply{Errors: []string{"only POST is accepted"}})
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.reply(req.Context(), w, http.StatusRequestEntityTooLarge, webhookReply{Errors: []string{
				"body is over max_request_body_size of " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes"}})
			return
		}
		s.reply(req.Context(), w, http.StatusBadRequest, webhookReply{Errors: []string{"reading body: " + err.Error()}})
		return
	}

	ctx := s.obs.StartLogsOp(req.Context())
	logs, records := s.r.newLogs()
	var stats decodeStats
	d := s.r.getDecoder()
	err = d.decodeBody(body, records, &stats)
	s.r.putDecoder(d)
	if err != nil {
		s.r.set.Logger.Warn("Refused a malformed audit webhook request",
			zap.String("remote", req.RemoteAddr), zap.Error(err))
		s.r.telemetry.ReceiverK8sAuditEventsMalformed.Add(ctx, 1,
			metric.WithAttributeSet(attribute.NewSet(attribute.String("source", sourceWebhook))))
		s.obs.EndLogsOp(ctx, "audit.k8s.io/v1", 0, err)
		s.reply(ctx, w, http.StatusBadRequest, webhookReply{Errors: []string{err.Error()}})
		return
	}
	s.r.account(ctx, sourceWebhook, req.RemoteAddr, &stats)

	reply := webhookReply{Accepted: records.Len(), Filtered: stats.filtered, Malformed: len(stats.malformed)}
	for _, e := range stats.malformed {
		reply.Errors = append(reply.Errors, e.Error())
	}
	if records.Len() > 0 {
		s.r.enrich(records)
		err = s.r.next.ConsumeLogs(ctx, logs)
	}
	s.obs.EndLogsOp(ctx, "audit.k8s.io/v1", records.Len(), err)
	switch {
	case err == nil:
		// Malformed events are not retried: the apiserver would send the same bytes.
		s.reply(ctx, w, http.StatusOK, reply)
	case consumererror.IsPermanent(err):
		reply.Accepted = 0
		reply.Errors = append(reply.Errors, "pipeline rejected the batch: "+err.Error())
		s.reply(ctx, w, http.StatusBadRequest, reply)
	default:
		// Backpressure (memory_limiter, a full queue): ask the apiserver to retry
		// the batch instead of losing it.
		reply.Accepted = 0
		reply.Errors = append(reply.Errors, "pipeline refused the batch, retry: "+err.Error())
		w.Header().Set("Retry-After", retryAfterSeconds)
		s.reply(ctx, w, http.StatusServiceUnavailable, reply)
	}
}

func (s *webhookServer) reply(ctx context.Context, w http.ResponseWriter, code int, body webhookReply) {
	s.r.telemetry.ReceiverK8sAuditWebhookRequests.Add(ctx, 1,
		metric.WithAttributeSet(attribute.NewSet(attribute.Int("http.response.status_code", code))))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
