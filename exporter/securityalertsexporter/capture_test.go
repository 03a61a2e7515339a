package securityalertsexporter

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// captureServer is an HTTP endpoint that records every body it is sent and
// answers with the status codes it is given, in order (the last one repeats).
type captureServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	codes  []int
}

func newCaptureServer(t *testing.T, codes ...int) *captureServer {
	t.Helper()
	if len(codes) == 0 {
		codes = []int{http.StatusOK}
	}
	s := &captureServer{codes: codes}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		code := s.codes[min(len(s.bodies), len(s.codes))-1]
		s.mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" {
			code = http.StatusUnsupportedMediaType
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *captureServer) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}
