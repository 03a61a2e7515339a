package k8sclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The pods ListWatch asks what client-go's typed pod client asks (path, field
// selector, the list's options) and decodes the list. Against a real apiserver:
// the podidentity tests.
func TestCoreV1Pods(t *testing.T) {
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},
			"items":[{"metadata":{"name":"web","namespace":"shop","uid":"u1"},"spec":{"nodeName":"node-a"}}]}`))
	}))
	defer srv.Close()

	core, err := NewCoreV1(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	obj, err := core.Pods("spec.nodeName=node-a").ListWithContextFunc(context.Background(), metav1.ListOptions{Limit: 500})
	require.NoError(t, err)
	pods := obj.(*corev1.PodList)
	require.Len(t, pods.Items, 1)
	assert.Equal(t, "web", pods.Items[0].Name)
	assert.Equal(t, "node-a", pods.Items[0].Spec.NodeName)
	assert.Equal(t, "7", pods.ResourceVersion)

	require.Len(t, got, 1)
	assert.Equal(t, "/api/v1/pods", got[0].URL.Path)
	assert.Equal(t, "spec.nodeName=node-a", got[0].URL.Query().Get("fieldSelector"))
	assert.Equal(t, "500", got[0].URL.Query().Get("limit"))
	assert.Equal(t, rest.DefaultKubernetesUserAgent(), got[0].UserAgent())
}
