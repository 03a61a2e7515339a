// Package alertmanagertest runs a real Prometheus Alertmanager (Debian's
// prometheus-alertmanager, from hack/install-deps.sh) for tests: alone on
// loopback, with its own storage, read back through its own v2 API.
package alertmanagertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// Bin is Debian's prometheus-alertmanager.
const Bin = "prometheus-alertmanager"

// Alertmanager is a real Alertmanager the test started on loopback, alone
// (no cluster), with its own storage directory.
type Alertmanager struct {
	t       *testing.T
	bin     string
	port    int
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

// amConfig routes every alert to a receiver that notifies no one: the test
// reads alerts back from the API, which is what Alertmanager stores.
const amConfig = `route:
  receiver: "null"
receivers:
  - name: "null"
`

// Start runs an Alertmanager on a free port; it is killed when the test ends,
// and its log is shown when the test failed.
func Start(t *testing.T) *Alertmanager {
	t.Helper()
	bin, err := exec.LookPath(Bin)
	testenv.Require(t, err == nil, Bin+" not found: apt-get install prometheus-alertmanager (hack/install-deps.sh test)")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(amConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{t: t, bin: bin, port: testenv.FreePort(t), dir: dir, logFile: filepath.Join(dir, "alertmanager.log")}
	am.Start()
	t.Cleanup(func() {
		am.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(am.logFile); err == nil {
				t.Logf("alertmanager log:\n%s", b)
			}
		}
	})
	return am
}

// URL is Alertmanager's base URL, the security_alerts exporter's endpoint.
func (am *Alertmanager) URL() string { return "http://127.0.0.1:" + strconv.Itoa(am.port) }

// Start runs Alertmanager on its port (again, after Kill) and waits until it is ready.
func (am *Alertmanager) Start() {
	am.t.Helper()
	log, err := os.OpenFile(am.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		am.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(am.bin,
		"--config.file="+filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(am.port),
		"--cluster.listen-address=", // alone: no gossip port, no peers
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		am.t.Fatalf("starting %s: %v", am.bin, err)
	}
	am.cmd, am.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(am.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-am.exited:
			am.t.Fatalf("alertmanager exited at start; log in %s", am.logFile)
		default:
		}
		if resp, err := http.Get(am.URL() + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	am.t.Fatalf("alertmanager on port %d not ready within 30s", am.port)
}

// Kill ends Alertmanager with SIGKILL, as a crash would: no flush, no goodbye.
// It keeps only its storage; alerts live in its memory and are gone.
func (am *Alertmanager) Kill() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGKILL)
	<-am.exited
	am.cmd = nil
}

// Alert is an alert as GET /api/v2/alerts returns it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// Alerts reads Alertmanager's current alerts through its own API.
func (am *Alertmanager) Alerts() ([]Alert, error) {
	resp, err := http.Get(am.URL() + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: HTTP %d", resp.StatusCode)
	}
	var out []Alert
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// WaitAlerts polls until ok accepts Alertmanager's alerts, or fails the test
// with the last ones seen.
func (am *Alertmanager) WaitAlerts(timeout time.Duration, ok func([]Alert) bool) []Alert {
	am.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []Alert
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = am.Alerts()
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	am.t.Fatalf("alertmanager did not reach the expected alerts within %v; last error %v; last alerts %+v", timeout, lastErr, last)
	return nil
}
