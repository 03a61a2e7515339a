// Package k8snode runs a real single-node Kubernetes cluster for tests: the control
// plane of internal/k8stest (etcd, kube-apiserver) plus kube-controller-manager,
// kube-scheduler, containerd, kubelet, kube-proxy (iptables) and CoreDNS, with a CNI
// bridge. Pods are real containers (runc), from images built in Go and imported into
// containerd: no registry.
//
//	n := k8snode.Start(t, k8snode.Options{})
//	n.Import(t, k8snode.BuildImage(t, k8snode.Image{...}))
//	out := n.Kubectl(t, "apply", "-k", dir)
//
// Root only. The binaries come from hack/build-k8s-binaries.sh (the same cache as
// k8stest's), containerd, runc, the CNI plugins, iptables and conntrack from Debian
// (hack/install-deps.sh). Everything is stopped and removed in t.Cleanup, in the order
// that leaves nothing behind: kubelet, the pods, containerd, kube-proxy and its rules,
// the control plane; then the kubepods cgroups, the bridge and the iptables rule.
package k8snode

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// The node's fixed network: pods on a bridge of their own, Services in k8stest's range.
const (
	NodeName      = "k8ssec-node"
	PodCIDR       = "10.244.0.0/24"
	BridgeIP      = "10.244.0.1" // the pods' gateway, and where CoreDNS listens
	bridgeName    = "k8ssec0"
	serviceCIDR   = "10.0.0.0/24" // k8stest's --service-cluster-ip-range
	apiServiceIP  = "10.0.0.1"    // the kubernetes Service: the first address of the range
	clusterDomain = "cluster.local"
)

// usableTimeout bounds the wait from the first process started to a usable node.
const usableTimeout = 3 * time.Minute

// Options configures Start.
type Options struct {
	// Control plane: the audit policy and webhook, as k8stest.Options. The node adds
	// its own flags (authorization Node,RBAC, the kubelet client, the serving SANs).
	AuditPolicy            []byte
	AuditWebhookKubeconfig []byte
}

// Node is a running single-node cluster.
type Node struct {
	Cluster    *k8stest.Cluster
	Client     kubernetes.Interface // admin
	Kubeconfig string               // admin kubeconfig file, for kubectl
	HostIP     string               // the node's InternalIP: the apiserver and the pods' way out
	Dir        string

	// state holds containerd's and the kubelet's state, under a short path of its own:
	// the kubelet's unix sockets must fit in 108 bytes, which a test's TempDir does not.
	state      string
	t          testing.TB
	bin        string
	containerd string // containerd's socket
	kubelet    *k8stest.Process
	started    time.Time
}

// Start brings up the cluster and returns once the node is usable: Ready, without
// taints, the default ServiceAccount there and cluster DNS answering.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	testenv.RequireRoot(t, "k8snode (containerd, kubelet, iptables)")
	bin := k8stest.BinDir(t)
	requireTools(t, bin)
	hostIP := hostIPv4(t)
	binDir = bin

	lockMachine(t)
	n := &Node{t: t, bin: bin, HostIP: hostIP, Dir: t.TempDir(), started: time.Now()}
	// Left by a run that could not clean up (killed): gone before anything starts.
	cleanHost(t)
	t.Cleanup(func() { cleanHost(t) })
	setupNetwork(t)
	state, err := os.MkdirTemp("", stateMarker+"-")
	if err != nil {
		t.Fatalf("k8snode: %v", err)
	}
	n.state = state
	t.Cleanup(func() {
		unmountUnder(state + "/")
		if err := os.RemoveAll(state); err != nil {
			t.Errorf("k8snode: removing %s: %v", state, err)
		}
	})

	ca := testcerts.NewCA(t)
	// The apiserver's client certificate for kubelets (exec, logs): system:masters, as
	// kubeadm's apiserver-kubelet-client is bound to kubelet-api-admin.
	clientPEM, clientKeyPEM := ca.Client(t, "kube-apiserver-kubelet-client", "system:masters")
	kubeletClient, kubeletClientKey := testcerts.WriteFiles(t, n.Dir, "apiserver-kubelet-client", clientPEM, clientKeyPEM)
	resolv := n.write("apiserver-resolv.conf", "nameserver "+BridgeIP+"\nsearch "+clusterDomain+"\noptions ndots:5\n")
	c := k8stest.Start(t, k8stest.Options{
		CA:                     ca,
		AuditPolicy:            opts.AuditPolicy,
		AuditWebhookKubeconfig: opts.AuditWebhookKubeconfig,
		ServingHosts: []string{"127.0.0.1", hostIP, apiServiceIP, "localhost",
			"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain},
		// The audit webhook's server is the gateway's Service name: the apiserver resolves
		// it through cluster DNS, as on a control-plane node whose resolver forwards
		// cluster.local there, in a mount namespace of its own (this machine's
		// /etc/resolv.conf stays as it is).
		Wrapper: []string{"unshare", "--mount", "--propagation", "private", "--",
			"/bin/sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv},
		ExtraArgs: []string{
			"--bind-address=0.0.0.0",
			"--advertise-address=" + hostIP,
			"--authorization-mode=Node,RBAC",
			"--disable-admission-plugins=",
			"--enable-admission-plugins=NodeRestriction",
			"--kubelet-client-certificate=" + kubeletClient,
			"--kubelet-client-key=" + kubeletClientKey,
			"--kubelet-preferred-address-types=InternalIP",
			"--endpoint-reconciler-type=lease",
		},
	})
	n.Cluster = c
	n.Kubeconfig = c.WriteKubeconfig(c.Config)
	n.Client = kubernetes.NewForConfigOrDie(c.Config)

	n.startControllers(t)
	n.startCoreDNS(t)
	n.startContainerd(t)
	n.startKubelet(t)
	n.startKubeProxy(t)
	n.waitUsable(t)
	t.Logf("k8snode: usable %v after start", time.Since(n.started).Round(100*time.Millisecond))
	return n
}

// Kubectl runs the kubectl built with the cluster as the admin, failing the test on error.
func (n *Node) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.KubectlErr(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// KubectlErr runs kubectl as the admin and returns its combined output.
func (n *Node) KubectlErr(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(n.bin, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// KubectlPath is the kubectl binary, for commands a person would type (README).
func (n *Node) KubectlPath() string { return filepath.Join(n.bin, "kubectl") }

// waitUsable waits until a pod can be created and scheduled: a Ready node is not yet
// usable (taints are lifted after, the default ServiceAccount comes from the
// controller-manager).
func (n *Node) waitUsable(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), usableTimeout)
	defer cancel()
	var last string
	for {
		last = n.notUsable(ctx)
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("k8snode: node not usable after %v: %s\nkubelet:\n%s", usableTimeout, last, n.kubelet.Stderr(40))
		case <-time.After(250 * time.Millisecond):
		}
		if gone, err := n.kubelet.Exited(); gone {
			t.Fatalf("k8snode: kubelet exited: %v\n%s", err, n.kubelet.Stderr(40))
		}
	}
}

// notUsable says what is still missing, or "" once the node is usable.
func (n *Node) notUsable(ctx context.Context) string {
	node, err := n.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return "node: " + err.Error()
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
			if !ready {
				return "node not Ready: " + c.Message
			}
		}
	}
	if !ready {
		return "node has no Ready condition yet"
	}
	if len(node.Spec.Taints) > 0 {
		return fmt.Sprintf("node tainted: %v", node.Spec.Taints)
	}
	if _, err := n.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "no default/default ServiceAccount yet"
		}
		return err.Error()
	}
	if err := n.lookupCluster(ctx, "kubernetes.default.svc."+clusterDomain); err != nil {
		return "cluster DNS: " + err.Error()
	}
	return ""
}

// lookupCluster resolves name through the node's CoreDNS.
func (n *Node) lookupCluster(ctx context.Context, name string) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(BridgeIP, "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := r.LookupHost(ctx, name)
	return err
}

// LookupCluster resolves name (a Service's DNS name) through the cluster's DNS.
func (n *Node) LookupCluster(name string) error {
	return n.lookupCluster(context.Background(), name)
}

func (n *Node) write(name, data string) string {
	n.t.Helper()
	path := filepath.Join(n.Dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		n.t.Fatalf("k8snode: %v", err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		n.t.Fatalf("k8snode: %v", err)
	}
	return path
}

// lockFile serializes nodes on one machine: they share the bridge, the kubepods
// cgroups and the iptables rules (go test runs packages in parallel).
const lockFile = "/run/lock/otelcol-k8ssec-k8snode.lock"

// lockMachine waits for the machine's node lock and holds it until the test ends
// (after every other cleanup: this one is registered first).
func lockMachine(t testing.TB) {
	t.Helper()
	_ = os.MkdirAll(filepath.Dir(lockFile), 0o755)
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("k8snode: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("k8snode: locking %s: %v", lockFile, err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// requireTools checks for what the node runs besides the cached binaries.
func requireTools(t testing.TB, bin string) {
	t.Helper()
	for _, b := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-proxy", "kubectl", "coredns"} {
		_, err := os.Stat(filepath.Join(bin, b))
		testenv.Require(t, err == nil, "k8snode: no "+b+" in "+bin+": run hack/build-k8s-binaries.sh")
	}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "conntrack", "unshare", "ip"} {
		_, err := exec.LookPath(tool)
		testenv.Require(t, err == nil, "k8snode: "+tool+" not found: run hack/install-deps.sh test (Debian's containerd, runc, iptables, conntrack)")
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		_, err := os.Stat(filepath.Join(cniBinDir, plugin))
		testenv.Require(t, err == nil, "k8snode: no CNI plugin "+plugin+" in "+cniBinDir+": apt-get install containernetworking-plugins")
	}
}

// hostIPv4 is the address of the interface that holds the default route: the node's
// InternalIP, reachable from the pods through the bridge.
func hostIPv4(t testing.TB) string {
	t.Helper()
	// No packet is sent: a UDP "connection" only picks the route and its source.
	conn, err := net.Dial("udp4", "198.51.100.1:9")
	if err != nil {
		t.Fatalf("k8snode: no IPv4 default route to find the node's address: %v", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String()
}

// MemoryRSS sums the resident memory of the node's processes (control plane, node
// components, containerd's shims), found by the temporary directory on their command
// lines; the containers' own processes are not counted.
func (n *Node) MemoryRSS() (total int64, shims int) {
	root := filepath.Dir(n.Dir)
	for pid, p := range processes() {
		if !strings.Contains(p.cmdline, root) && !strings.Contains(p.cmdline, n.state) {
			continue
		}
		if strings.Contains(p.cmdline, "containerd-shim") {
			shims++
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb * 1024
			}
		}
	}
	return total, shims
}
