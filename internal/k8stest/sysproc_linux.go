package k8stest

import "syscall"

// A new process group lets stop reach every descendant; Pdeathsig kills the child if
// the test binary dies without running cleanups (a -timeout panic, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
