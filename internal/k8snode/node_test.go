package k8snode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const workloadImage = "k8ssec.test/busybox:1"

// A pod on the node runs, resolves a Service by cluster DNS and reaches the apiserver
// through the kubernetes Service (kube-proxy); the node starts clean a second time on
// the same machine, with nothing of the first left behind.
func TestNodeStartsRunsPodsAndStartsAgainClean(t *testing.T) {
	for _, run := range []string{"first", "second"} {
		t.Run(run, func(t *testing.T) {
			n := Start(t, Options{})
			rss, _ := n.MemoryRSS()
			t.Logf("k8snode: %d MiB resident with no pod", rss>>20)
			n.Import(t, BuildImage(t, Image{Ref: workloadImage, Files: BusyboxFiles(t)}))

			start := time.Now()
			n.Kubectl(t, "run", "probe", "--image="+workloadImage, "--image-pull-policy=Never", "--restart=Never",
				"--command", "--", "/bin/sh", "-c",
				"nslookup kubernetes.default.svc.cluster.local && nc -w 5 kubernetes.default.svc.cluster.local 443 </dev/null && echo reached")
			phase := waitPodDone(t, n, "default", "probe", 2*time.Minute)
			logs, _ := n.KubectlErr("logs", "probe")
			if phase != corev1.PodSucceeded {
				t.Fatalf("probe pod %s:\n%s", phase, logs)
			}
			if !strings.Contains(logs, "reached") {
				t.Fatalf("probe pod did not reach the apiserver's Service:\n%s", logs)
			}
			t.Logf("k8snode: probe pod done %v after kubectl run", time.Since(start).Round(100*time.Millisecond))
			rss, shims := n.MemoryRSS()
			t.Logf("k8snode: %d MiB resident with %d shim(s)", rss>>20, shims)
		})
		if t.Failed() {
			return
		}
		assertClean(t)
	}
}

// waitPodDone polls until the pod has succeeded or failed.
func waitPodDone(t *testing.T, n *Node, ns, name string, timeout time.Duration) corev1.PodPhase {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pod, err := n.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) {
			return pod.Status.Phase
		}
		if time.Now().After(deadline) {
			desc, _ := n.KubectlErr("describe", "pod", "-n", ns, name)
			t.Fatalf("pod %s/%s not done after %v:\n%s", ns, name, timeout, desc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertClean checks that what the node put on the machine outside its temporary
// directory is gone.
func assertClean(t *testing.T) {
	t.Helper()
	if err := exec.Command("ip", "link", "show", bridgeName).Run(); err == nil {
		t.Errorf("bridge %s still there", bridgeName)
	}
	if err := exec.Command("iptables", append([]string{"-C"}, egressRule...)...).Run(); err == nil {
		t.Errorf("egress rule still there")
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if out, _ := exec.Command(save).Output(); strings.Contains(string(out), "KUBE-") {
			t.Errorf("%s: KUBE- chains still there:\n%s", save, out)
		}
	}
	for _, d := range []string{"/sys/fs/cgroup/unified/kubepods", "/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/kubepods"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s still there", d)
		}
	}
	for pid, p := range processes() {
		if strings.Contains(p.cmdline, "containerd-shim") && strings.Contains(p.cmdline, stateMarker) {
			t.Errorf("shim %d still running: %s", pid, p.cmdline)
		}
	}
	if entries, _ := os.ReadDir("/var/log/pods"); len(entries) > 0 {
		t.Errorf("pod logs left in /var/log/pods: %v", entries)
	}
	links, _ := filepath.Glob("/var/log/containers/*")
	if len(links) > 0 {
		t.Errorf("links left in /var/log/containers: %v", links)
	}
}
