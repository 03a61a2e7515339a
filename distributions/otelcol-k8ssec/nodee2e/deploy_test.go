package nodee2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8snode"
)

const (
	namespace      = "otelcol-k8ssec"
	collectorImage = "k8ssec.test/otelcol-k8ssec:e2e"
	workloadImage  = "k8ssec.test/workload:e2e"
	// What the shipped manifests name; the test overlay replaces it.
	shippedImage = "ghcr.io/otelcol-k8ssec/otelcol-k8ssec"
)

// deployment is the shipped manifests running on a node.
type deployment struct {
	node    *k8snode.Node
	sink    *sink
	certs   string // make-certs.sh's directory
	repo    string
	overlay string // the test's kustomization: later steps add to it and apply again
}

// repoRoot is the repository's root, three up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "builder-config.yaml")); err != nil {
		t.Fatalf("repository root not found from the test's directory: %v", err)
	}
	return root
}

// deploy does what docs/install.md tells a user: certificates with make-certs.sh,
// the apiserver's audit files, the Secrets by the commands make-certs.sh prints, then
// kubectl apply -k through an overlay that sets the image, the pull policy and the
// backend, and waits for everything to be ready.
func deploy(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{repo: repoRoot(t)}
	// One image with both builds, as docs/builds.md says: the full one the gateway
	// tiers run (the entrypoint), the agent's the DaemonSet names as its command.
	bin := filepath.Join(d.repo, "_build", "otelcol-k8ssec")
	agentBin := filepath.Join(d.repo, "_build", "otelcol-k8ssec-agent")
	for _, b := range []string{bin, agentBin} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s is missing (%v): run make build", b, err)
		}
	}
	manifests := filepath.Join(d.repo, "distributions", "otelcol-k8ssec", "manifests")
	apiserverDir := filepath.Join(d.repo, "distributions", "otelcol-k8ssec", "kube-apiserver")

	d.certs = filepath.Join(t.TempDir(), "certs")
	printed, err := exec.Command("bash", filepath.Join(manifests, "make-certs.sh"), d.certs).CombinedOutput()
	if err != nil {
		t.Fatalf("make-certs.sh: %v\n%s", err, printed)
	}

	// The control plane's files, where the template expects them (README: copy
	// gateway-ca.crt to .../ca.crt and the audit client's pair beside it).
	pki := filepath.Join(t.TempDir(), "pki")
	mustMkdir(t, pki)
	copyFile(t, filepath.Join(d.certs, "gateway-ca.crt"), filepath.Join(pki, "ca.crt"))
	copyFile(t, filepath.Join(d.certs, "audit-client.crt"), filepath.Join(pki, "audit-client.crt"))
	copyFile(t, filepath.Join(d.certs, "audit-client.key"), filepath.Join(pki, "audit-client.key"))
	webhook := readFile(t, filepath.Join(apiserverDir, "audit-webhook-kubeconfig.yaml"))
	webhook = strings.ReplaceAll(webhook, "/etc/kubernetes/pki/otelcol-k8ssec/", pki+"/")
	policy := readFile(t, filepath.Join(apiserverDir, "audit-policy.yaml"))

	d.node = k8snode.Start(t, k8snode.Options{AuditPolicy: []byte(policy), AuditWebhookKubeconfig: []byte(webhook)})
	d.sink = startSink(t, d.node.HostIP, d.certs)
	d.sink.diagnose = d.rulesMetrics

	d.node.Import(t,
		k8snode.BuildImage(t, k8snode.Image{Ref: collectorImage, Files: []k8snode.File{
			{Path: "/otelcol-k8ssec", Source: bin, Mode: 0o755},
			{Path: "/otelcol-k8ssec-agent", Source: agentBin, Mode: 0o755},
			{Path: "/etc/ssl/certs/ca-certificates.crt", Source: "/etc/ssl/certs/ca-certificates.crt"},
		}, Entrypoint: []string{"/otelcol-k8ssec"}}),
		k8snode.BuildImage(t, k8snode.Image{Ref: workloadImage, Files: workloadFiles(t)}),
	)

	// The Secrets, by the commands make-certs.sh printed, with the cluster's kubectl.
	secrets := exec.Command("bash", "-euo", "pipefail", "-c", string(printed))
	secrets.Env = append(os.Environ(), "KUBECONFIG="+d.node.Kubeconfig,
		"PATH="+filepath.Dir(d.node.KubectlPath())+":"+os.Getenv("PATH"))
	if out, err := secrets.CombinedOutput(); err != nil {
		t.Fatalf("make-certs.sh's kubectl commands: %v\n%s", err, out)
	}

	overlay := t.TempDir()
	d.overlay = overlay
	rel, err := filepath.Rel(overlay, manifests)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(overlay, "kustomization.yaml"), fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
images:
  - name: %s
    newName: %s
    newTag: %s
patches:
  # Imported into the node's containerd, not pulled.
  - target: {group: apps, version: v1}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Never
  # Where events and alerts go: the test's backend, with a certificate of the gateway's CA.
  - path: backend.yaml
`, rel, shippedImage, strings.Split(collectorImage, ":")[0], strings.Split(collectorImage, ":")[1]))
	var backend strings.Builder
	for i, name := range []string{"gateway", "rules"} {
		if i > 0 {
			backend.WriteString("---\n")
		}
		fmt.Fprintf(&backend, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: otelcol-k8ssec-%s
  namespace: %s
spec:
  template:
    spec:
      containers:
        - name: %s
          env:
            - {name: K8SSEC_BACKEND_ENDPOINT, value: %q}
            - {name: K8SSEC_BACKEND_CA_FILE, value: /etc/otelcol-k8ssec/tls/ca.crt}
`, name, namespace, name, d.sink.addr)
	}
	writeFile(t, filepath.Join(overlay, "backend.yaml"), backend.String())

	applied := time.Now()
	d.node.Kubectl(t, "apply", "-k", overlay)
	for _, w := range []string{"daemonset/otelcol-k8ssec-agent", "deployment/otelcol-k8ssec-gateway", "deployment/otelcol-k8ssec-rules"} {
		if out, err := d.node.KubectlErr("-n", namespace, "rollout", "status", w, "--timeout=4m"); err != nil {
			t.Fatalf("%s not ready: %v\n%s\n%s", w, err, out, d.describe())
		}
	}
	d.waitRingsComplete(t)
	rss, shims := d.node.MemoryRSS()
	t.Logf("deployed: everything ready %v after kubectl apply; the cluster's processes (not the pods') %d MiB resident, %d shims",
		time.Since(applied).Round(100*time.Millisecond), rss>>20, shims)
	return d
}

// waitRingsComplete waits until every front replica's loadbalancing exporter routes
// to every rules replica (otelcol_loadbalancer_num_backends): Ready pods are not yet
// on the fronts' rings, which follow DNS every few seconds, and two fronts whose rings
// differ send one key's events to two rules replicas, where a sequence cannot join them.
func (d *deployment) waitRingsComplete(t *testing.T) {
	t.Helper()
	want := "2" // the rules Deployment's replicas
	var last string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		backends := d.frontBackends()
		ok := len(backends) == 2
		for _, b := range backends {
			ok = ok && b == want
		}
		if ok {
			return
		}
		last = fmt.Sprint(backends)
		if time.Now().After(deadline) {
			t.Fatalf("the fronts' rings do not hold both rules replicas after 2 minutes: backends per front %s", last)
		}
	}
}

// frontBackends reads otelcol_loadbalancer_num_backends of each front replica.
func (d *deployment) frontBackends() []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if !strings.HasSuffix(string(cmd), "/otelcol-k8ssec\x00--config\x00k8ssec:gateway\x00") {
			continue
		}
		metrics, _ := exec.Command("nsenter", "-t", e.Name(), "-n", "curl", "-s", "http://localhost:8888/metrics").Output()
		value := "none"
		for _, line := range strings.Split(string(metrics), "\n") {
			if strings.HasPrefix(line, "otelcol_loadbalancer_num_backends") {
				value = line[strings.LastIndexByte(line, ' ')+1:]
			}
		}
		out = append(out, value)
	}
	return out
}

// rulesMetrics reads the security_rules counters of every gateway and rules-tier
// process from its self-metrics endpoint (localhost:8888 in the pod's network
// namespace, entered from the node).
func (d *deployment) rulesMetrics() string {
	var b strings.Builder
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if !strings.Contains(string(cmd), "/otelcol-k8ssec\x00--config\x00k8ssec:gateway") {
			continue
		}
		out, err := exec.Command("nsenter", "-t", e.Name(), "-n", "curl", "-s", "http://localhost:8888/metrics").Output()
		fmt.Fprintf(&b, "pid %s (%s): %v\n", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "), err)
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "security_rules_late") || strings.Contains(line, "security_rules_reorder") ||
				strings.Contains(line, "security_rules_dropped") || strings.Contains(line, "exporter_send_failed") {
				b.WriteString("  " + line + "\n")
			}
		}
	}
	return b.String()
}

// describe is what a person would look at when the deployment is not ready.
func (d *deployment) describe() string {
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"-n", namespace, "describe", "pods"},
		{"-n", namespace, "logs", "-l", "app.kubernetes.io/name=otelcol-k8ssec", "--tail=30", "--prefix", "--all-containers"},
	} {
		out, _ := d.node.KubectlErr(args...)
		b.WriteString("$ kubectl " + strings.Join(args, " ") + "\n" + out + "\n")
	}
	return b.String()
}

// workloadFiles are the workload image's: Debian's static busybox and its applets,
// an HTTP server that logs as ingress-nginx does (testdata/ingresslog),
// and for the enforcement scenario a copy of busybox and a link to it under miners' names
// (run, busybox would only say it has no such applet), suffixed so that the agent's
// kill list, which applies to the whole machine, cannot meet another test's process.
func workloadFiles(t *testing.T) []k8snode.File {
	return append(k8snode.BusyboxFiles(t),
		k8snode.File{Path: "/bin/ingresslog", Source: k8snode.GoBinary(t, "./testdata/ingresslog"), Mode: 0o755},
		k8snode.File{Path: "/usr/local/bin/xmrig-nodee2e", Source: "/bin/busybox", Mode: 0o755},
		k8snode.File{Path: "/usr/local/bin/minerd-nodee2e", Link: "/bin/busybox"},
		k8snode.File{Path: "/etc/shadow", Data: []byte("root:*:19000:0:99999:7:::\n"), Mode: 0o640})
}

// patchAgent adds a JSON patch of the agent DaemonSet to the overlay, applies it and
// waits for the new agent pod: what a user does to change the agent's settings.
func (d *deployment) patchAgent(t *testing.T, name, patch string) {
	t.Helper()
	writeFile(t, filepath.Join(d.overlay, name), patch)
	k := readFile(t, filepath.Join(d.overlay, "kustomization.yaml"))
	k += "  - path: " + name + "\n    target: {kind: DaemonSet, name: otelcol-k8ssec-agent}\n"
	writeFile(t, filepath.Join(d.overlay, "kustomization.yaml"), k)
	d.node.Kubectl(t, "apply", "-k", d.overlay)
	if out, err := d.node.KubectlErr("-n", namespace, "rollout", "status", "daemonset/otelcol-k8ssec-agent", "--timeout=4m"); err != nil {
		t.Fatalf("agent not ready after %s: %v\n%s\n%s", name, err, out, d.describe())
	}
}

// runPod creates a pod of the workload image running command and waits until it runs.
func (d *deployment) runPod(t *testing.T, ns, name string, labels map[string]string, command ...string) *corev1.Pod {
	t.Helper()
	d.createPod(t, ns, name, labels, nil, command...)
	return d.waitRunning(t, ns, name)
}

// createPod creates a pod of the workload image running command; edit, when set,
// changes the pod before it is created.
func (d *deployment) createPod(t *testing.T, ns, name string, labels map[string]string, edit func(*corev1.Pod), command ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.node.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if _, err := d.node.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The controller-manager adds the namespace's default ServiceAccount a moment
	// later; until then a pod is refused.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := d.node.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no default ServiceAccount in %s: %v", ns, err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever, Command: command,
			}},
			TerminationGracePeriodSeconds: ptr(int64(1)),
		},
	}
	if edit != nil {
		edit(pod)
	}
	if _, err := d.node.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitRunning waits until the pod runs.
func (d *deployment) waitRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := d.node.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
		if time.Now().After(deadline) {
			out, _ := d.node.KubectlErr("-n", ns, "describe", "pod", name)
			t.Fatalf("pod %s/%s not running after 2m:\n%s", ns, name, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	writeFile(t, to, readFile(t, from))
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
