//go:build !amd64

package probe

import "golang.org/x/sys/unix"

// dup2: architectures without the dup2 system call (arm64) have dup3 only.
func dup2(oldfd, newfd int) error { return unix.Dup3(oldfd, newfd, 0) }

const dup2Op = DupOpDup3
