//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/manifests"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
)

// capabilityBits maps the capability names a manifest may add to their numbers.
var capabilityBits = map[string]uint{
	"BPF": unix.CAP_BPF, "PERFMON": unix.CAP_PERFMON, "SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "KILL": unix.CAP_KILL, "SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"SYS_ADMIN": unix.CAP_SYS_ADMIN,
}

// agentContainer returns setpriv's arguments that run a root process as the
// agent's container in agent-daemonset.yaml does: only the capabilities it adds
// (a root process's effective set is its bounding set) and, with
// allowPrivilegeEscalation false, no_new_privs; and the effective set expected.
func agentContainer(t *testing.T) (setpriv []string, effective uint64) {
	t.Helper()
	_, err := exec.LookPath("setpriv")
	testenv.Require(t, err == nil, "setpriv (util-linux) runs the agent with the DaemonSet's capabilities")
	objs, err := manifests.Load()
	require.NoError(t, err)
	var ds *appsv1.DaemonSet
	for _, o := range objs {
		if d, ok := o.Obj.(*appsv1.DaemonSet); ok {
			ds = d
		}
	}
	require.NotNil(t, ds, "no DaemonSet in the manifests")
	sc := ds.Spec.Template.Spec.Containers[0].SecurityContext
	bounding := []string{"-all"}
	for _, c := range sc.Capabilities.Add {
		bit, ok := capabilityBits[string(c)]
		require.True(t, ok, "capability %s: add it to capabilityBits", c)
		effective |= 1 << bit
		bounding = append(bounding, "+"+strings.ToLower(string(c)))
	}
	setpriv = []string{"setpriv", "--bounding-set", strings.Join(bounding, ","), "--inh-caps", "-all"}
	if ape := sc.AllowPrivilegeEscalation; ape != nil && !*ape {
		setpriv = append(setpriv, "--no-new-privs")
	}
	return append(setpriv, "--"), effective
}

// capEff reads a process's effective capabilities.
func capEff(t *testing.T, pid int) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no CapEff in /proc/<pid>/status")
	return 0
}
