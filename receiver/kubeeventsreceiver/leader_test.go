package kubeeventsreceiver

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestLeaderElectionFailover runs two replicas with leader election: only the
// Lease holder emits. The leader then dies without releasing the Lease while
// Events keep coming; the other replica takes over when the Lease expires and
// resumes from the shared checkpoint: every Event exactly once, none lost in
// the gap, none of the dead leader's repeated (the survivor starts at
// beginning, so without the shared checkpoint it would repeat them all).
func TestLeaderElectionFailover(t *testing.T) {
	c, cs := cluster(t)
	const ns = "failover"
	createNamespace(t, cs, ns)
	replica := func(id string) *testReceiver {
		return startReceiver(t, c.Config, rcvOpts{storageDir: t.TempDir(), crash: true, mutate: func(cfg *Config) {
			cfg.Namespaces = []string{ns}
			cfg.LeaderElection = LeaderElectionConfig{Enabled: true, LeaseName: "kube-events", LeaseNamespace: "default",
				Identity: id, LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
		}})
	}
	replicas := map[string]*testReceiver{"replica-a": replica("replica-a"), "replica-b": replica("replica-b")}

	var leaderID string
	waitFor(t, "a leader", func() bool { leaderID = holder(t, cs); return leaderID != "" })
	leader := replicas[leaderID]
	var follower *testReceiver
	for id, r := range replicas {
		if id != leaderID {
			follower = r
		}
	}
	t.Logf("leader %s", leaderID)

	createEvents(t, cs, ns, "one", 20)
	waitFor(t, "the leader's events", func() bool { return len(occurrencesIn(ns, leader.sink)) == 20 })

	leader.stop(t) // no release: the Lease must expire, as when a pod is killed
	createEvents(t, cs, ns, "two", 20)
	waitFor(t, "the survivor's events", func() bool { return len(occurrencesIn(ns, follower.sink)) == 20 })
	createEvents(t, cs, ns, "sentinel", 1)
	waitFor(t, "the sentinel", func() bool { return occurrencesIn(ns, follower.sink)["sentinel-0#1"] == 1 })

	assert.Equal(t, follower.r.cfg.LeaderElection.Identity, holder(t, cs))
	expectOnce(t, ns, names("one", 20), leader.sink)
	expectOnce(t, ns, append(names("two", 20), "sentinel-0#1"), follower.sink)
	cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "kube-events", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, cm.Data["v1.failover"], "the shared checkpoint")
	assert.NotEmpty(t, follower.logs.FilterMessageSnippet("Resuming from checkpoint").All())
}

// holder is the Lease's holder, "" while there is none.
func holder(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("default").Get(context.Background(), "kube-events", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return strings.TrimSpace(*l.Spec.HolderIdentity)
}

// TestRestartedLeaderReacquiresAtOnce: a leader dies without releasing the
// Lease and comes back as the same pod (a container restart keeps POD_NAME).
// It leads again while the dead process's Lease is still valid, where any
// other identity has to wait it out, and resumes from its checkpoint.
func TestRestartedLeaderReacquiresAtOnce(t *testing.T) {
	c, cs := cluster(t)
	const ns = "reacquire"
	createNamespace(t, cs, ns)
	const pod = "otelcol-k8ssec-gateway-7d9c8b6f5-x2x9q"
	t.Setenv(podNameEnv, pod)
	opts := rcvOpts{storageDir: t.TempDir(), crash: true, mutate: func(cfg *Config) {
		cfg.Namespaces = []string{ns}
		cfg.LeaderElection.Enabled = true
		cfg.LeaderElection.LeaseName = "kube-events"
		cfg.LeaderElection.LeaseNamespace = "default" // production durations: 15s, 10s, 2s
	}}
	a := startReceiver(t, c.Config, opts)
	waitFor(t, "the first process to lead", func() bool { return holder(t, cs) != "" })
	createEvents(t, cs, ns, "one", 5)
	waitFor(t, "the first process's events", func() bool { return len(occurrencesIn(ns, a.sink)) == 5 })
	a.stop(t) // no release, as after kill -9

	lease, err := cs.CoordinationV1().Leases("default").Get(context.Background(), "kube-events", metav1.GetOptions{})
	require.NoError(t, err)
	expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	b := startReceiver(t, c.Config, opts)
	createEvents(t, cs, ns, "two", 5)
	waitFor(t, "the restarted process's events", func() bool { return len(occurrencesIn(ns, b.sink)) == 5 })
	assert.True(t, time.Now().Before(expires), "the restarted leader waited out its own Lease (valid until %v)", expires)
	assert.Equal(t, pod, holder(t, cs))
	expectOnce(t, ns, names("one", 5), a.sink)
	expectOnce(t, ns, names("two", 5), b.sink)
}

// TestIdentity: the configured identity, else the pod's name, else a host name
// made unique per process.
func TestIdentity(t *testing.T) {
	t.Setenv(podNameEnv, "")
	host, err := os.Hostname()
	require.NoError(t, err)
	a, b := LeaderElectionConfig{}.identity(), LeaderElectionConfig{}.identity()
	assert.NotEqual(t, a, b, "two processes on one host")
	assert.True(t, strings.HasPrefix(a, host+"_"), a)

	t.Setenv(podNameEnv, "gateway-a")
	assert.Equal(t, "gateway-a", LeaderElectionConfig{}.identity())
	t.Setenv(podNameEnv, "gateway-b")
	assert.Equal(t, "gateway-b", LeaderElectionConfig{}.identity(), "another replica, another pod name")
	assert.Equal(t, "mine", LeaderElectionConfig{Identity: "mine"}.identity(), "configured wins")
}
