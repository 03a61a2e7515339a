package clientset

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

// Tests hand components client-go's clientsets.
var (
	_ Interface = (*kubernetes.Clientset)(nil)
	_ Interface = (*fake.Clientset)(nil)
)

func TestNewForConfig(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{} // path -> User-Agent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.UserAgent()
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()

	cs, err := NewForConfig(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	_, _ = cs.CoreV1().ConfigMaps("ns").Get(ctx, "cm", metav1.GetOptions{})
	_, _ = cs.EventsV1().Events("ns").List(ctx, metav1.ListOptions{})
	_, _ = cs.CoordinationV1().Leases("ns").Get(ctx, "l", metav1.GetOptions{})
	ua := rest.DefaultKubernetesUserAgent()
	require.Equal(t, map[string]string{
		"/api/v1/namespaces/ns/configmaps/cm":                 ua,
		"/apis/events.k8s.io/v1/namespaces/ns/events":         ua,
		"/apis/coordination.k8s.io/v1/namespaces/ns/leases/l": ua,
	}, got)

	cs, err = NewForConfig(&rest.Config{Host: srv.URL, UserAgent: "me"})
	require.NoError(t, err)
	_, _ = cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
	require.Equal(t, "me", got["/api/v1/namespaces/ns/pods/p"])

	_, err = NewForConfig(&rest.Config{Host: srv.URL, QPS: 5})
	require.ErrorContains(t, err, "burst is required")
}
