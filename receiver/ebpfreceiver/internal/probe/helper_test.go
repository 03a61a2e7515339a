package probe

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// The tests re-execute their own binary as a helper that changes its
// credentials: the escalation detector's cases need processes of their own.
const helperEnv = "K8SSEC_PROBE_TEST_HELPER"

func init() {
	if name := os.Getenv(helperEnv); name != "" {
		if err := runHelper(name); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// helperCommand runs the binary at exe as helper name.
func helperCommand(exe, name string) *exec.Cmd {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	return cmd
}

func runHelper(name string) error {
	// Credentials are per thread: change and read them on one.
	runtime.LockOSThread()
	switch name {
	case "suid":
		return helperSuid()
	case "regain":
		return helperRegain()
	}
	return fmt.Errorf("unknown helper %q", name)
}

func setresuid(r, e, s int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(r), uintptr(e), uintptr(s)); errno != 0 {
		return fmt.Errorf("setresuid(%d, %d, %d): %w", r, e, s, errno)
	}
	return nil
}

func printIDs() {
	fmt.Println(unix.Getresuid())
}

// helperSuid, run set-uid root by a non-root user: prints its ids, makes
// them all root (setresuid, which it may: its euid is 0), prints them again.
func helperSuid() error {
	printIDs()
	if err := setresuid(0, 0, 0); err != nil {
		return err
	}
	printIDs()
	return nil
}

// helperRegain, run as root: becomes uid 1000 keeping 0 as its saved uid,
// sets PR_SET_KEEPCAPS (commit_creds, ids unchanged), then takes euid 0 back
// from the saved uid, as an unprivileged process may; prints its ids.
func helperRegain() error {
	if err := setresuid(1000, 1000, 0); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl: %w", err)
	}
	if err := setresuid(-1, 0, -1); err != nil {
		return err
	}
	printIDs()
	return nil
}
