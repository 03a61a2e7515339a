package probe

import "golang.org/x/sys/unix"

// dup2Op is what dup2 below is reported as.
const dup2Op = DupOpDup2

// dup2 is the dup2 system call itself (x/sys's Dup2 is dup3 with no flags).
func dup2(oldfd, newfd int) error {
	if _, _, errno := unix.Syscall(unix.SYS_DUP2, uintptr(oldfd), uintptr(newfd), 0); errno != 0 {
		return errno
	}
	return nil
}
