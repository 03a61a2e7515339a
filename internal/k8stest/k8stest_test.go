package k8stest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
)

func TestClusterAPIRBACAndAudit(t *testing.T) {
	sink := startAuditSink(t)
	start := time.Now()
	c := Start(t, Options{AuditLog: true, AuditWebhookKubeconfig: sink.kubeconfig})
	t.Logf("cluster ready in %v at %s", time.Since(start).Round(time.Millisecond), c.URL)

	ctx := t.Context()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cs.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "k8stest"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns.Name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
	}
	if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	got, err := cs.CoreV1().Pods(ns.Name).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if got.Spec.Containers[0].Image != "nginx:1.27" || got.UID == "" {
		t.Errorf("pod read back wrong: image %q uid %q", got.Spec.Containers[0].Image, got.UID)
	}

	alice, err := kubernetes.NewForConfig(c.ConfigAs("alice"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.CoreV1().Secrets(ns.Name).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("alice listing secrets: got %v, want Forbidden", err)
	}

	nsCreate := func(e auditEvent) bool {
		return e.Verb == "create" && e.ObjectRef.Resource == "namespaces" && e.ObjectRef.Name == "k8stest"
	}
	ev := waitAuditEvent(ctx, t, c.AuditLogPath, nsCreate)
	if ev.AuditID == "" {
		t.Errorf("namespace create event has no auditID: %+v", ev)
	}
	if ev.User.Username != "admin" {
		t.Errorf("namespace create by %q, want admin", ev.User.Username)
	}

	// The webhook backend sends the same event, over mutual TLS, within a batch wait.
	hook := sink.wait(ctx, t, nsCreate)
	if hook.AuditID != ev.AuditID {
		t.Errorf("webhook auditID %q, log auditID %q", hook.AuditID, ev.AuditID)
	}
}

// auditSink is an HTTPS server that accepts the apiserver's audit webhook batches
// only from a client certificate its CA signed.
type auditSink struct {
	kubeconfig []byte
	mu         sync.Mutex
	events     []auditEvent
}

func startAuditSink(t *testing.T) *auditSink {
	ca := testcerts.NewCA(t)
	s := &auditSink{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var list struct {
			Kind  string       `json:"kind"`
			Items []auditEvent `json:"items"`
		}
		if err := json.NewDecoder(r.Body).Decode(&list); err != nil || list.Kind != "EventList" {
			http.Error(w, fmt.Sprintf("want an EventList: %v", err), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, list.Items...)
		s.mu.Unlock()
	}))
	certPEM, keyPEM := ca.Server(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	srv.StartTLS()
	t.Cleanup(srv.Close) // registered before Start, so it runs after the apiserver stops
	clientCert, clientKey := ca.Client(t, "kube-apiserver")
	s.kubeconfig = WebhookKubeconfig(srv.URL+"/audit", ca.CertPEM(), clientCert, clientKey)
	return s
}

func (s *auditSink) wait(ctx context.Context, t *testing.T, match func(auditEvent) bool) auditEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		for _, e := range s.events {
			if match(e) {
				s.mu.Unlock()
				return e
			}
		}
		n := len(s.events)
		s.mu.Unlock()
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no matching audit event among %d received by the webhook", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWebhookKubeconfigParses(t *testing.T) {
	kc := WebhookKubeconfig("https://127.0.0.1:9443/audit", []byte("CA"), []byte("CERT"), []byte("KEY"))
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, kc)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cl.Server != "https://127.0.0.1:9443/audit" || string(cl.CertificateAuthorityData) != "CA" ||
		string(user.ClientCertificateData) != "CERT" || string(user.ClientKeyData) != "KEY" {
		t.Errorf("round trip lost data:\n%s", kc)
	}

	// Without a client certificate the user entry is empty, which the apiserver accepts.
	cfg, err = clientcmd.Load(WebhookKubeconfig("https://127.0.0.1:9443/audit", []byte("CA"), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]; u == nil || len(u.ClientCertificateData) != 0 {
		t.Errorf("user without cert = %+v", u)
	}
}

type auditEvent struct {
	AuditID   string                    `json:"auditID"`
	Stage     string                    `json:"stage"`
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef struct {
		Resource string `json:"resource"`
		Name     string `json:"name"`
	} `json:"objectRef"`
}

// waitAuditEvent polls the audit log: events reach the file shortly after the
// response, not before it.
func waitAuditEvent(ctx context.Context, t *testing.T, path string, match func(auditEvent) bool) auditEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				var e auditEvent
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("audit log line is not JSON: %v\n%s", err, sc.Bytes())
				}
				if match(e) {
					f.Close()
					return e
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("no matching audit event in %s", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
