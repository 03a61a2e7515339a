package ebpfreceiver

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tests re-execute their own binary as a helper that performs real
// actions (syscalls) from a process the test starts in its cgroup.
const helperEnv = "K8SSEC_EBPF_TEST_HELPER"

func init() {
	if name := os.Getenv(helperEnv); name != "" {
		if err := runHelper(name, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// helperCommand runs the test binary as helper name with args, in cg.
func helperCommand(cg *testCgroup, name string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	cmd := cg.command(exe, args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	return cmd
}

func runHelper(name string, args []string) error {
	switch name {
	case "file":
		return helperFile(args[0])
	case "net":
		return helperNet()
	case "priv":
		return helperPriv(args[0])
	case "memfd-exec":
		return helperMemfdExec()
	case "opens":
		return helperOpens(args[0], args[1])
	case "exec":
		return unix.Exec(args[0], args, os.Environ())
	case "sockets":
		return helperSockets(args[0], args[1])
	case "sensitive":
		return helperSensitive()
	case "chroot-exec": // root, then the exec's argv: a process under another root, as in a container
		if err := unix.Chroot(args[0]); err != nil {
			return err
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
		return unix.Exec(args[1], args[1:], []string{})
	case "pidns":
		fmt.Println(inInitialPidNamespace())
		return nil
	}
	if h, ok := attackHelpers[name]; ok { // attack_test.go's actions
		return h(args)
	}
	return fmt.Errorf("unknown helper %q", name)
}

// helperFile does, below dir: open for write (create, truncate), open for
// read of a missing file, rename, chmod, chown, unlink; it prints the fd of
// the first open.
func helperFile(dir string) error {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	fd, err := unix.Openat(unix.AT_FDCWD, a, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	fmt.Println(fd)
	unix.Close(fd)
	if _, err := unix.Openat(unix.AT_FDCWD, filepath.Join(dir, "missing"), unix.O_RDWR, 0); err != unix.ENOENT {
		return fmt.Errorf("open of a missing file: %v", err)
	}
	if err := unix.Renameat(unix.AT_FDCWD, a, unix.AT_FDCWD, b); err != nil {
		return err
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, b, 0o600, 0); err != nil {
		return err
	}
	if err := unix.Fchownat(unix.AT_FDCWD, b, 65534, 65534, 0); err != nil {
		return err
	}
	return unix.Unlinkat(unix.AT_FDCWD, b, 0)
}

// helperNet, for 127.0.0.1 then ::1: binds a listener to port 0, listens,
// connects to it and accepts, with blocking syscalls; it prints, per family,
// the listener's port, the client's port, the listening fd, the client's fd
// and the accepted fd.
func helperNet() error {
	for _, c := range []struct {
		family int
		addr   unix.Sockaddr
	}{
		{unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}},
		{unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}},
	} {
		ln, err := unix.Socket(c.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(ln, c.addr); err != nil {
			return err
		}
		if err := unix.Listen(ln, 8); err != nil {
			return err
		}
		sa, err := unix.Getsockname(ln)
		if err != nil {
			return err
		}
		cl, err := unix.Socket(c.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Connect(cl, sa); err != nil {
			return err
		}
		ca, err := unix.Getsockname(cl)
		if err != nil {
			return err
		}
		afd, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err != nil {
			return err
		}
		fmt.Println(sockPort(sa), sockPort(ca), ln, cl, afd)
	}
	return nil
}

func sockPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return -1
}

// helperPriv, as root, on one OS thread: loads a BPF program, creates a
// memfd, joins its own uts namespace, unshares its mount namespace and mounts
// a tmpfs on dir, attaches to a sleep child with ptrace, sets its
// capabilities to what they are, then setgid(65534) and setuid(65534). It
// prints the BPF program's fd, the memfd, the namespace fd, the traced pid
// and the effective capabilities' low word.
func helperPriv(dir string) error {
	runtime.LockOSThread() // never unlocked: the thread dies with the helper
	// BPF_PROG_LOAD of a socket filter "r0 = 0; exit", named k8ssec_t.
	insns := [2]uint64{0x00000000000000b7, 0x0000000000000095}
	license := []byte("GPL\x00")
	var attr [128]byte
	*(*uint32)(unsafe.Pointer(&attr[0])) = 1 // BPF_PROG_TYPE_SOCKET_FILTER
	*(*uint32)(unsafe.Pointer(&attr[4])) = 2
	*(*uint64)(unsafe.Pointer(&attr[8])) = uint64(uintptr(unsafe.Pointer(&insns[0])))
	*(*uint64)(unsafe.Pointer(&attr[16])) = uint64(uintptr(unsafe.Pointer(&license[0])))
	copy(attr[48:], "k8ssec_t")
	bpfFd, _, errno := unix.Syscall(unix.SYS_BPF, 5, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	if errno != 0 {
		return fmt.Errorf("bpf: %w", errno)
	}
	mfd, err := unix.MemfdCreate("k8ssec-mfd", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	nsFd, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Setns(nsFd, unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("k8ssec-src", dir, "tmpfs", unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	sleep := exec.Command("/bin/sleep", "5")
	if err := sleep.Start(); err != nil {
		return err
	}
	if err := unix.PtraceAttach(sleep.Process.Pid); err != nil {
		return fmt.Errorf("ptrace: %w", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(sleep.Process.Pid, &ws, unix.WALL, nil); err != nil {
		return err
	}
	if err := unix.PtraceDetach(sleep.Process.Pid); err != nil {
		return err
	}
	// Now, while root: after setuid the helper could not kill it.
	_ = sleep.Process.Kill()
	_ = sleep.Wait()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return err
	}
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	fmt.Println(bpfFd, mfd, nsFd, sleep.Process.Pid, caps[0].Effective)
	// Raw, on this thread only (syscall.Setuid would change every thread: one record each).
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGID, 65534, 0, 0); errno != 0 {
		return fmt.Errorf("setgid: %w", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETUID, 65534, 0, 0); errno != 0 {
		return fmt.Errorf("setuid: %w", errno)
	}
	return nil
}

// helperMemfdExec copies /bin/true into a memfd and executes it with
// execveat(AT_EMPTY_PATH): fileless execution.
func helperMemfdExec() error {
	fd, err := unix.MemfdCreate("k8ssec-fileless", 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "memfd")
	src, err := os.Open("/bin/true")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		return err
	}
	argv := []string{"fileless"}
	return unix.Exec("/proc/self/fd/"+fmt.Sprint(fd), argv, []string{})
}

// helperOpens opens path for reading n times.
func helperOpens(path, n string) error {
	var count int
	if _, err := fmt.Sscan(n, &count); err != nil {
		return err
	}
	for range count {
		fd, err := unix.Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}
