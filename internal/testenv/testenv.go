// Package testenv lets a test state what it needs from the machine (root, a
// cgroup v2 hierarchy): lacking it, the test is skipped on a developer's
// machine but fails under CI (CI set, as .ci/run does), where a skip would let
// a run pass without exercising what it claims to test.
package testenv // import "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under CI, where every prerequisite must
// be there.
func InCI() bool { return os.Getenv("CI") != "" }

// Require skips tb, or fails it under CI, when ok is false; why says what is
// missing and what to do.
func Require(tb testing.TB, ok bool, why string) {
	tb.Helper()
	if ok {
		return
	}
	if InCI() {
		tb.Fatalf("%s (CI is set: a missing prerequisite fails instead of skipping)", why)
		return
	}
	tb.Skip(why)
}

// RequireRoot: the test loads BPF programs, makes cgroups or runs the
// agent's ebpf receiver.
func RequireRoot(tb testing.TB, what string) {
	tb.Helper()
	Require(tb, os.Geteuid() == 0, what+" needs root: run the tests as root (sudo make test)")
}
