package nodee2e

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// triggers is an HTTP server on the node that a pod polls: /<name> answers 200 once
// the test has fired name, 404 before. It lets a pod act on cue while the apiserver
// (and so kubectl exec) is down.
type triggers struct {
	mu    sync.Mutex
	fired map[string]bool
	addr  string
}

func startTriggers(t *testing.T, ip string) *triggers {
	t.Helper()
	tr := &triggers{fired: map[string]bool{}}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	tr.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		ok := tr.fired[strings.TrimPrefix(r.URL.Path, "/")]
		tr.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return tr
}

func (tr *triggers) fire(name string) {
	tr.mu.Lock()
	tr.fired[name] = true
	tr.mu.Unlock()
}

// Scenario 5: the apiserver goes away and the agent's process is restarted while it
// is away. The agent comes back and stays up (no crash loop), the kernel events and
// the enforcement still happen (a kill_paths binary is killed, /etc/shadow read is
// alerted) and say why they carry no pod; once the apiserver is back, the pod's
// events carry its identity again.
func (d *deployment) agentWithoutAPIServer(t *testing.T) {
	const ns, pod = "shop", "waiter"
	tr := startTriggers(t, d.node.HostIP)
	wait := func(name string) string {
		return "until wget -q -O /dev/null http://" + tr.addr + "/" + name + "; do sleep 1; done; "
	}
	p := d.runPod(t, ns, pod, map[string]string{"app": "waiter"}, "/bin/sh", "-c",
		wait("outage")+"cat /etc/shadow >/dev/null; /usr/local/bin/xmrig-nodee2e; echo xmrig-exit=$?; "+
			wait("back")+"while true; do cat /etc/shadow >/dev/null; sleep 2; done")
	cid := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	agentPod := d.agentPod(t)

	d.node.Cluster.StopAPIServer()
	apiserverDown := true
	defer func() {
		if apiserverDown {
			d.node.Cluster.StartAPIServer()
		}
	}()
	before := agentPID(t)
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The kubelet restarts the container from its own copy of the pod.
	after := waitNewAgent(t, before, agentPod.Status.PodIP, 2*time.Minute)

	tr.fire("outage")
	killed := d.sink.waitEnforced(t, alertTimeout, func(a alert) bool {
		return a.get("container.id") == cid && a.get("k8ssec.enforcement.rule") == "/usr/local/bin/xmrig-nodee2e"
	})
	read := d.sink.wait(t, "Sensitive file read", alertTimeout, func(a alert) bool {
		return a.get("container.id") == cid
	})
	for _, a := range []alert{killed, read} {
		if a.get("k8s.pod.name") != "" {
			t.Errorf("%s: a pod name with the apiserver away? %s", a.Rule, a)
		}
		if a.get("k8ssec.k8s.pod.pending_reason") == "" {
			t.Errorf("%s: no k8ssec.k8s.pod.pending_reason on an event whose pod is unknown\n%s", a.Rule, a)
		}
	}
	// Up, the same process, past the 30 s the pod watch used to be given before the
	// agent gave up.
	for end := time.Now().Add(40 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if now := agentPID(t); now != after {
			t.Fatalf("the agent restarted while the apiserver was away (pid %d, then %d)", after, now)
		}
	}

	d.node.Cluster.StartAPIServer()
	apiserverDown = false
	back := time.Now()
	// The pod reads /etc/shadow every 2 s from now on: the agent's pod watch resumes
	// with client-go's back-off, and the reads after it carry the pod again.
	tr.fire("back")
	// Here 1.5 minutes: the apiserver cleared the kubernetes Service's endpoints as it
	// stopped, and kube-proxy's and the agent's watches come back with back-off.
	d.sink.wait(t, "Sensitive file read", 4*time.Minute, func(a alert) bool {
		return a.get("container.id") == cid && a.get("k8s.pod.name") == pod && a.get("k8s.pod.label.app") == "waiter"
	})
	t.Logf("pod identity back in the alerts %v after the apiserver", time.Since(back).Round(time.Second))
	if now := agentPID(t); now != after {
		t.Errorf("the agent restarted when the apiserver came back (pid %d, then %d)", after, now)
	}
	t.Logf("during the outage: %s", killed)
}

// agentPod is the agent DaemonSet's pod.
func (d *deployment) agentPod(t *testing.T) *corev1.Pod {
	t.Helper()
	pods, err := d.node.Client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=agent"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("agent pod: %v (%d pods)", err, len(pods.Items))
	}
	return &pods.Items[0]
}

// waitNewAgent waits for an agent process other than old whose health check answers.
func waitNewAgent(t *testing.T, old int, podIP string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if pid := agentPID(t); pid != old {
			if resp, err := client.Get("http://" + net.JoinHostPort(podIP, "13133") + "/"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return pid
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy agent after its process was killed within %v", timeout)
		}
		time.Sleep(time.Second)
	}
}
