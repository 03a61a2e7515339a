package k8snode

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testcerts"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// startControllers runs kube-controller-manager (it mints service-account tokens with
// the apiserver's signing key, publishes the root CA to every namespace, runs the
// Deployment, ReplicaSet and DaemonSet controllers) and kube-scheduler, both as the
// admin and without leader election.
func (n *Node) startControllers(t testing.TB) {
	t.Helper()
	ca := n.write("ca.crt", string(n.Cluster.CAPEM))
	k8stest.StartProcess(t, n.Dir, "kube-controller-manager", filepath.Join(n.bin, "kube-controller-manager"),
		"--kubeconfig="+n.Kubeconfig,
		"--service-account-private-key-file="+n.Cluster.ServiceAccountKey,
		"--root-ca-file="+ca,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(testenv.FreePort(t)),
		"--cert-dir="+filepath.Join(n.Dir, "kube-controller-manager"),
		"--cluster-cidr="+PodCIDR,
		"--service-cluster-ip-range="+serviceCIDR,
		// Pods are gone quickly once deleted (the default waits 5 minutes for a lost node).
		"--node-monitor-grace-period=40s",
	)
	k8stest.StartProcess(t, n.Dir, "kube-scheduler", filepath.Join(n.bin, "kube-scheduler"),
		"--kubeconfig="+n.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(testenv.FreePort(t)),
		"--cert-dir="+filepath.Join(n.Dir, "kube-scheduler"),
	)
}

// startCoreDNS runs CoreDNS on the bridge address (the pods' clusterDNS): cluster.local
// from the API, everything else forwarded to this machine's resolver.
func (n *Node) startCoreDNS(t testing.TB) {
	t.Helper()
	ready := testenv.FreePort(t)
	health := testenv.FreePort(t)
	corefile := n.write("Corefile", fmt.Sprintf(`.:53 {
    bind %s
    ready 127.0.0.1:%d
    health 127.0.0.1:%d
    errors
    cache 5
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
}
`, BridgeIP, ready, health, clusterDomain, n.Kubeconfig))
	p := k8stest.StartProcess(t, n.Dir, "coredns", filepath.Join(n.bin, "coredns"), "-conf", corefile)
	waitHTTP(t, p, fmt.Sprintf("http://127.0.0.1:%d/ready", ready), time.Minute)
}

// startContainerd runs containerd with its own root, state and socket under the
// temporary directory, the CRI plugin on cgroupfs and the CNI bridge, and imports the
// pause image it uses for every pod sandbox.
func (n *Node) startContainerd(t testing.TB) {
	t.Helper()
	root := n.state
	n.containerd = filepath.Join(root, "containerd.sock")
	cniConf := filepath.Join(n.Dir, "cni", "net.d")
	n.write(filepath.Join("cni", "net.d", "10-k8ssec.conflist"), fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "k8ssec",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, bridgeName, PodCIDR, BridgeIP, filepath.Join(n.Dir, "cni", "ipam")))
	config := n.write("containerd.toml", fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # This machine's bounding set lacks CAP_SYS_RESOURCE: runc could not raise a
  # container's oom_score_adj, and every sandbox would fail ("can't get final child's
  # PID from pipe: EOF").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(root, "root"), filepath.Join(root, "state"), n.containerd, PauseImage, cniBinDir, cniConf))
	p := k8stest.StartProcess(t, n.Dir, "containerd", "containerd", "--config", config)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(n.containerd); err == nil {
			if _, err := n.ctr("version"); err == nil {
				break
			}
		}
		if gone, err := p.Exited(); gone {
			t.Fatalf("k8snode: containerd did not start: %v\n%s", err, p.Stderr(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("k8snode: containerd not answering after a minute\n%s", p.Stderr(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.Import(t, pauseImage(t))
}

// startKubelet runs the kubelet as system:node:<NodeName> against containerd, with
// the cgroupfs driver and the pods' DNS on the bridge.
func (n *Node) startKubelet(t testing.TB) {
	t.Helper()
	certPEM, keyPEM := n.Cluster.Issue("system:node:"+NodeName, "system:nodes")
	crt, key := testcerts.WriteFiles(t, n.Dir, "kubelet-client", certPEM, keyPEM)
	kubeconfig := n.write("kubelet.kubeconfig", kubeconfigFor(n.Cluster.URL, n.Dir, crt, key))
	root := filepath.Join(n.state, "kubelet")
	config := n.write("kubelet.yaml", fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 controllers with the unified hierarchy beside them
# (hybrid), which kubelet counts as v1.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
clusterDNS: [%s]
clusterDomain: %s
failSwapOn: false
# Without CAP_SYS_RESOURCE kubelet cannot lower its own score.
oomScoreAdj: 0
# A test machine's disk is shared: never evict or collect images for it.
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: %s
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
`, n.containerd, n.HostIP, testenv.FreePort(t), testenv.FreePort(t), filepath.Join(n.Dir, "ca.crt"),
		BridgeIP, clusterDomain, filepath.Join(root, "volume-plugins")))
	// Registered before the kubelet's own cleanup, so it runs after the kubelet stopped.
	t.Cleanup(func() { n.removePods(t) })
	n.kubelet = k8stest.StartProcess(t, n.Dir, "kubelet", filepath.Join(n.bin, "kubelet"),
		"--config="+config,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+root,
		"--cert-dir="+filepath.Join(root, "pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+n.HostIP,
	)
}

// startKubeProxy runs kube-proxy in iptables mode: ClusterIPs route (the agent reaches
// the gateway by its Service, pods reach the apiserver by the kubernetes Service).
func (n *Node) startKubeProxy(t testing.TB) {
	t.Helper()
	config := n.write("kube-proxy.yaml", fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
iptables:
  # Would set net.ipv4.conf.all.route_localnet on this shared machine.
  localhostNodePorts: false
# Leave this machine's conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.Kubeconfig, NodeName, PodCIDR, testenv.FreePort(t), testenv.FreePort(t)))
	k8stest.StartProcess(t, n.Dir, "kube-proxy", filepath.Join(n.bin, "kube-proxy"), "--config="+config)
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, p *k8stest.Process, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if gone, err := p.Exited(); gone {
			t.Fatalf("k8snode: %v\n%s", err, p.Stderr(30))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("k8snode: %s not ready after %v\n%s", url, timeout, p.Stderr(30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// kubeconfigFor is a kubeconfig for server with a client certificate, by file.
func kubeconfigFor(server, dir, crt, key string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8snode
  cluster: {server: %q, certificate-authority: %q}
users:
- name: user
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: k8snode
  context: {cluster: k8snode, user: user}
current-context: k8snode
`, server, filepath.Join(dir, "ca.crt"), crt, key)
}
