package kubeeventsreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
)

// podPath is the path of one pod.
var podPath = regexp.MustCompile(`^/api/v1/namespaces/[^/]+/pods/[^/]+$`)

// apiProxy forwards to the real apiserver; each pod GET goes through podGET,
// which forwards it by calling serve, or holds it first.
func apiProxy(t *testing.T, c *k8stest.Cluster, podGET func(req *http.Request, serve func())) *rest.Config {
	t.Helper()
	target, err := url.Parse(c.URL)
	require.NoError(t, err)
	tlsCfg, err := rest.TLSConfigFor(c.Config)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	proxy.FlushInterval = -1 // watches stream
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && podPath.MatchString(req.URL.Path) {
			podGET(req, func() { proxy.ServeHTTP(w, req) })
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	cfg := rest.CopyConfig(c.Config)
	cfg.Host = srv.URL
	cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: true}
	return cfg
}

// TestPodLookupsDoNotHoldTheStream: pod GETs hang. Events about five new pods
// are emitted anyway, after lookup_timeout, without pod labels, and
// checkpointed; once the apiserver answers, later events about those pods
// carry them. The old synchronous GET in the watch loop emitted nothing.
func TestPodLookupsDoNotHoldTheStream(t *testing.T) {
	c, cs := cluster(t)
	const ns = "slow-pods"
	createNamespace(t, cs, ns)
	for i := range 5 {
		_, err := cs.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web:1"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	release := make(chan struct{})
	hold := func(req *http.Request, serve func()) {
		select {
		case <-release:
			serve()
		case <-req.Context().Done():
		}
	}
	tr := startReceiver(t, apiProxy(t, c, hold), rcvOpts{storageDir: t.TempDir(), mutate: func(cfg *Config) {
		cfg.Namespaces = []string{ns}
	}})
	about := func(name string, pod int) *corev1.Event {
		e := coreEvent(ns, name, "BackOff", "Back-off restarting failed container")
		e.InvolvedObject.Name = fmt.Sprintf("web-%d", pod)
		return e
	}
	var lastRV string
	for i := range 5 {
		e, err := cs.CoreV1().Events(ns).Create(context.Background(), about(fmt.Sprintf("held-%d", i), i), metav1.CreateOptions{})
		require.NoError(t, err)
		lastRV = e.ResourceVersion
	}
	waitFor(t, "the events while pod lookups hang", func() bool { return len(occurrencesIn(ns, tr.sink)) == 5 })
	for _, lr := range records(tr.sink) {
		assert.Empty(t, attr(lr, "k8s.pod.label.app"), "no labels before the lookup answered")
	}
	waitFor(t, "the checkpoint while lookups hang", func() bool {
		ckpt, err := tr.r.ckpt.load(context.Background(), (&stream{api: apiCore, namespace: ns}).key())
		return err == nil && !newerRV(lastRV, ckpt)
	})

	// The held lookups complete and fill the cache: a later event about one of
	// the pods carries its labels (its batch waits for a lookup still under way).
	close(release)
	_, err := cs.CoreV1().Events(ns).Create(context.Background(), about("after", 4), metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, "the enriched event", func() bool { return occurrencesIn(ns, tr.sink)["after#1"] == 1 })
	for _, lr := range records(tr.sink) {
		if attr(lr, attrEventName) == "after" {
			assert.Equal(t, "web", attr(lr, "k8s.pod.label.app"))
		}
	}
	assert.Zero(t, counterValue(t, tr, "otelcol_receiver_kube_events_pod_lookup_errors"))
}

// TestPodLookupErrorsCountedAndLogged: the receiver may watch Events but not
// get pods (403). Events are emitted without enrichment; every failed lookup
// is counted, and logged once a minute at most.
func TestPodLookupErrorsCountedAndLogged(t *testing.T) {
	c, cs := cluster(t)
	const ns = "no-pods"
	createNamespace(t, cs, ns)
	grantEventsOnly(t, cs, "eve")
	tr := startReceiver(t, c.ConfigAs("eve"), rcvOpts{mutate: func(cfg *Config) { cfg.Namespaces = []string{ns} }})
	for i := range 3 {
		e := coreEvent(ns, fmt.Sprintf("ev-%d", i), "BackOff", "Back-off restarting failed container")
		e.InvolvedObject.Name = fmt.Sprintf("web-%d", i) // three pods: three lookups
		_, err := cs.CoreV1().Events(ns).Create(context.Background(), e, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	waitFor(t, "the events", func() bool { return len(occurrencesIn(ns, tr.sink)) == 3 })
	waitFor(t, "three failed lookups", func() bool {
		return counterValue(t, tr, "otelcol_receiver_kube_events_pod_lookup_errors") == 3
	})
	logged := tr.logs.FilterMessageSnippet("Pod enrichment: looking up a pod failed").All()
	require.Len(t, logged, 1, "repeats of the same kind of error are not logged again")
	assert.Contains(t, logged[0].ContextMap()["error"], `cannot get resource "pods"`)
	assert.Contains(t, logged[0].ContextMap()["hint"], "get on pods")
}

// grantEventsOnly lets user list and watch Events, nothing else.
func grantEventsOnly(t *testing.T, cs kubernetes.Interface, user string) {
	t.Helper()
	ctx := context.Background()
	_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "events-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list", "watch"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "events-reader-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "events-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// TestCheckpointNotStarvedByLookups: with leader election the checkpoint is a
// ConfigMap write through the API. A burst of Events about 40 new pods needs
// 40 pod GETs, 6 s of client-go's default 5 QPS after its burst of 10; the
// checkpoint covering the whole burst is written while most of them are
// still to come, because lookups have their own token bucket and the stream
// waits for them at most lookup_timeout. (A shared bucket and a GET in the
// watch loop wrote it after the last GET.)
func TestCheckpointNotStarvedByLookups(t *testing.T) {
	c, cs := cluster(t)
	const ns, pods = "many-pods", 40
	createNamespace(t, cs, ns)
	var looked atomic.Int64
	count := func(_ *http.Request, serve func()) {
		serve()
		looked.Add(1)
	}
	startReceiver(t, apiProxy(t, c, count), rcvOpts{mutate: func(cfg *Config) {
		cfg.Namespaces = []string{ns}
		cfg.LeaderElection.Enabled = true
		cfg.LeaderElection.LeaseName = "kube-events"
		cfg.LeaderElection.LeaseNamespace = "default"
	}})
	shared := func() string {
		cm, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), "kube-events", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return cm.Data["v1."+ns]
	}
	waitFor(t, "the leader's first checkpoint", func() bool { return shared() != "" })

	var lastRV string
	for i := range pods {
		e := coreEvent(ns, fmt.Sprintf("ev-%d", i), "BackOff", "Back-off restarting failed container")
		e.InvolvedObject.Name = fmt.Sprintf("web-%d", i)
		created, err := cs.CoreV1().Events(ns).Create(context.Background(), e, metav1.CreateOptions{})
		require.NoError(t, err)
		lastRV = created.ResourceVersion
	}
	waitFor(t, "the checkpoint past the burst", func() bool { return !newerRV(lastRV, shared()) })
	atCheckpoint := looked.Load()
	waitFor(t, "every lookup", func() bool { return looked.Load() == pods })
	assert.Less(t, atCheckpoint, int64(pods), "the checkpoint waited for the pod lookups")
	t.Logf("%d of %d pod lookups were done when the checkpoint passed the burst", atCheckpoint, pods)
}
