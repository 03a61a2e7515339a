package k8snode

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/mountinfo"
)

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// stateMarker is a path component of every directory the node's containerd and kubelet
// keep state in: mounts and shims of a run that died without cleaning up are found by it.
const stateMarker = "k8snode-root"

// egressRule keeps pods' traffic on the bridge and the node: nothing is forwarded
// from a pod to anywhere outside the pod network (a test pod must not reach the
// machine's network, and an attack scenario's "connect out" goes to the node).
var egressRule = []string{"FORWARD", "-s", PodCIDR, "!", "-d", PodCIDR, "-j", "DROP"}

// setupNetwork makes the bridge with the pods' gateway address before anything needs
// it (CoreDNS listens there; the CNI bridge plugin adopts an existing bridge), turns
// on forwarding (what the bridge plugin would do) and adds the egress rule.
func setupNetwork(t testing.TB) {
	t.Helper()
	run(t, "ip", "link", "add", bridgeName, "type", "bridge")
	run(t, "ip", "addr", "add", BridgeIP+"/24", "dev", bridgeName)
	run(t, "ip", "link", "set", bridgeName, "up")
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatalf("k8snode: %v", err)
	}
	if strings.TrimSpace(string(forward)) != "1" {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			t.Fatalf("k8snode: enabling IPv4 forwarding: %v", err)
		}
		t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644) })
	}
	run(t, "iptables", append([]string{"-I"}, egressRule...)...)
}

// cleanHost removes what a node leaves on the machine outside its temporary
// directory, whether this run's or one that died: containers of leftover shims, mounts
// under the state directories, kube-proxy's rules, the kubepods cgroups, the bridge,
// the egress rule, the pods' log directories. Each step is idempotent.
func cleanHost(t testing.TB) {
	t.Helper()
	killLeftoverShims()
	unmountUnder("/" + stateMarker + "-")
	if dirs, err := filepath.Glob(filepath.Join(os.TempDir(), stateMarker+"-*")); err == nil {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}
	if kp, err := exec.LookPath(filepath.Join(binDirOrEmpty(), "kube-proxy")); err == nil {
		// Removes the KUBE-* chains of every proxy mode.
		_ = exec.Command(kp, "--cleanup", "--v=0").Run()
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		removeKubeChains(tool)
	}
	for exec.Command("iptables", append([]string{"-D"}, egressRule...)...).Run() == nil {
	}
	_ = exec.Command("ip", "link", "del", bridgeName).Run()
	removeCgroups("kubepods")
	removeNetns()
	removeDanglingLinks("/var/log/containers")
}

// binDirOrEmpty is set by Start, so that cleanup finds kube-proxy.
var binDir string

func binDirOrEmpty() string { return binDir }

// removeKubeChains removes the KUBE-* chains that kube-proxy --cleanup leaves (the
// kubelet's own: KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and the rules
// of the built-in chains that jump to them, in every table, through one
// iptables-restore --noflush per table.
func removeKubeChains(tool string) {
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command(tool+"-save", "-t", table).Output()
		if err != nil {
			continue
		}
		var jumps, chains []string
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, ":KUBE-"):
				chains = append(chains, strings.Fields(line[1:])[0])
			case strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, "-A KUBE-") && strings.Contains(line, " KUBE-"):
				jumps = append(jumps, "-D "+line[3:])
			}
		}
		if len(chains) == 0 && len(jumps) == 0 {
			continue
		}
		script := "*" + table + "\n" + strings.Join(jumps, "\n") + "\n"
		for _, c := range chains {
			script += "-F " + c + "\n"
		}
		for _, c := range chains {
			script += "-X " + c + "\n"
		}
		cmd := exec.Command(tool+"-restore", "--noflush")
		cmd.Stdin = strings.NewReader(script + "COMMIT\n")
		_ = cmd.Run()
	}
}

// run runs a command that must succeed.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("k8snode: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// killLeftoverShims SIGKILLs containerd shims started by a node's containerd (their
// command line names its socket, under stateMarker) and every process below them:
// only a run that died leaves any, since cleanup removes the pods through CRI.
func killLeftoverShims() {
	procs := processes()
	var roots []int
	for pid, p := range procs {
		if strings.Contains(p.cmdline, "containerd-shim") && strings.Contains(p.cmdline, stateMarker) {
			roots = append(roots, pid)
		}
	}
	for _, root := range roots {
		for _, pid := range descendants(procs, root) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(root, syscall.SIGKILL)
	}
}

type procInfo struct {
	ppid    int
	cmdline string
}

func processes() map[int]procInfo {
	out := map[int]procInfo{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: fields after the last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out[pid] = procInfo{ppid: ppid, cmdline: strings.ReplaceAll(string(cmdline), "\x00", " ")}
	}
	return out
}

func descendants(procs map[int]procInfo, root int) []int {
	var out []int
	for pid, p := range procs {
		if p.ppid == root {
			out = append(out, descendants(procs, pid)...)
			out = append(out, pid)
		}
	}
	return out
}

// unmountUnder detaches every mount whose mount point contains marker, deepest first
// (pod volumes, rootfs, the sandboxes' shm): a mount left there would make the
// temporary directory impossible to remove.
func unmountUnder(marker string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.Contains(fields[4]+"/", marker) {
			points = append(points, mountinfo.Unescape(fields[4]))
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// removeCgroups removes <hierarchy>/<name> and everything below it in every mounted
// cgroup hierarchy (v1 controllers and the unified one), deepest first: kubelet's
// cgroupfs driver makes /kubepods in each.
func removeCgroups(name string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		fields, after := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(fields) < 5 || len(after) < 1 || (after[0] != "cgroup" && after[0] != "cgroup2") {
			continue
		}
		removeTree(filepath.Join(mountinfo.Unescape(fields[4]), name))
	}
}

func removeTree(dir string) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

// removeNetns removes the network namespaces the CRI plugin pins under /run/netns
// (cni-<uuid>) when a sandbox was not removed through CRI.
func removeNetns() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			p := filepath.Join("/run/netns", e.Name())
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			_ = os.Remove(p)
		}
	}
}

// removePodLogs removes the kubelet's log directories of the given pods
// (/var/log/pods/<namespace>_<name>_<uid>): kubelet deletes them with the pod, but
// cleanup removes the pods after kubelet has stopped. Then their /var/log/containers
// links.
func removePodLogs(dirs []string) {
	for _, d := range dirs {
		_ = os.RemoveAll(filepath.Join("/var/log/pods", d))
	}
	removeDanglingLinks("/var/log/containers")
}

func removeDanglingLinks(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
}
