package manifests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8stest"
)

// warnings collects the apiserver's warning headers (Pod Security among them).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.msgs, "\n")
	w.msgs = nil
	return s
}

// create creates obj as the apiserver would from `kubectl apply`, with strict
// field validation: the apiserver's own schema and admission (Pod Security
// included) judge the manifests.
func create(ctx context.Context, cs kubernetes.Interface, obj runtime.Object) error {
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = cs.CoreV1().Namespaces().Create(ctx, o, opts)
	case *corev1.ServiceAccount:
		_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, opts)
	case *corev1.Service:
		_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, opts)
	case *rbacv1.ClusterRole:
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, o, opts)
	case *rbacv1.ClusterRoleBinding:
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, o, opts)
	case *rbacv1.Role:
		_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, opts)
	case *rbacv1.RoleBinding:
		_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, opts)
	case *appsv1.DaemonSet:
		_, err = cs.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, opts)
	case *appsv1.Deployment:
		_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, opts)
	default:
		return fmt.Errorf("no create for %T", obj)
	}
	return err
}

// applyManifests starts a real apiserver and creates every object of the
// manifests on it, in the kustomization's order. It returns the admin client and
// the Pod Security warnings each workload drew, by name.
func applyManifests(t *testing.T) (*k8stest.Cluster, kubernetes.Interface, map[string]string) {
	t.Helper()
	cluster := k8stest.Start(t, k8stest.Options{})
	w := &warnings{}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	warned := map[string]string{}
	for _, o := range load(t) {
		name := o.Obj.(metav1.Object).GetName()
		require.NoError(t, create(t.Context(), cs, o.Obj), "%s: %T %s", o.File, o.Obj, name)
		warned[name] = w.take()
	}
	return cluster, cs, warned
}

func TestManifestsOnARealAPIServer(t *testing.T) {
	cluster, admin, warned := applyManifests(t)

	t.Run("pod security", func(t *testing.T) {
		// The namespace warns at the restricted level: the gateway meets it, the agent
		// (hostPID, hostPath, capabilities, root) cannot.
		assert.Empty(t, warned[gatewayName], "the gateway Deployment must pass Pod Security restricted")
		assert.Contains(t, warned[agentName], `violate PodSecurity "restricted`)
		for _, why := range []string{"hostPID", "hostPath", "capabilities"} {
			assert.Contains(t, warned[agentName], why)
		}
	})

	t.Run("pods from the templates", func(t *testing.T) {
		// What the DaemonSet and ReplicaSet controllers would create (no controller
		// runs here): pod admission (Pod Security enforce, the priority class, the
		// service account) judges the templates, dry-run.
		objs := load(t)
		ds := one[*appsv1.DaemonSet](t, objs, agentName)
		dep := one[*appsv1.Deployment](t, objs, gatewayName)
		for name, tmpl := range map[string]corev1.PodTemplateSpec{agentName: ds.Spec.Template, gatewayName: dep.Spec.Template} {
			pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
			pod.Name = name + "-dry-run"
			pod.Namespace = Namespace
			got, err := admin.CoreV1().Pods(Namespace).Create(t.Context(), pod, metav1.CreateOptions{
				DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
			if assert.NoError(t, err, "pod of %s", name) && name == agentName {
				require.NotNil(t, got.Spec.Priority, "the priority class resolved")
				assert.Positive(t, *got.Spec.Priority)
			}
		}
	})

	t.Run("access review", func(t *testing.T) { accessReview(t, admin) })
	t.Run("gateway as itself", func(t *testing.T) { gatewayAsItself(t, cluster, admin) })
}

type access struct {
	ns, verb, group, resource, sub, name string
	allowed                              bool
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.sub != "" {
		r += "/" + a.sub
	}
	return fmt.Sprintf("%s %s name=%q ns=%q", a.verb, r, a.name, a.ns)
}

// accessReview asks the apiserver's authorizer (SubjectAccessReview) what the two
// service accounts may do, with the groups a service account token carries.
func accessReview(t *testing.T, admin kubernetes.Interface) {
	const other = "kube-system"
	cases := map[string][]access{
		agentName: {
			{"", "list", "", "pods", "", "", true},
			{"", "watch", "", "pods", "", "", true},
			{"default", "list", "", "pods", "", "", true},
			{"", "list", "", "secrets", "", "", false},
			{Namespace, "get", "", "secrets", "", "otelcol-k8ssec-agent-tls", false},
			{"", "get", "", "nodes", "", "n1", false},
			{"default", "create", "", "pods", "", "", false},
			{"default", "update", "", "pods", "", "p", false},
			{"", "watch", "", "events", "", "", false},
		},
		gatewayName: {
			{"", "watch", "", "events", "", "", true},
			{"", "list", "", "events", "", "", true},
			{"default", "watch", "", "events", "", "", true},
			{"", "list", "events.k8s.io", "events", "", "", true},
			{"", "watch", "events.k8s.io", "events", "", "", true},
			{"default", "get", "", "pods", "", "web-1", true},
			{"", "list", "", "pods", "", "", true}, // k8s_audit's pod_labels
			{"", "watch", "", "pods", "", "", true},
			{Namespace, "get", "coordination.k8s.io", "leases", "", leaseName, true},
			{Namespace, "update", "coordination.k8s.io", "leases", "", leaseName, true},
			{Namespace, "create", "coordination.k8s.io", "leases", "", "", true},
			{Namespace, "get", "", "configmaps", "", leaseName, true},
			{Namespace, "update", "", "configmaps", "", leaseName, true},
			{Namespace, "create", "", "configmaps", "", "", true},

			{Namespace, "get", "", "secrets", "", "otelcol-k8ssec-gateway-tls", false},
			{"", "list", "", "secrets", "", "", false},
			{other, "get", "", "secrets", "", "x", false},
			{"default", "create", "", "pods", "exec", "web-1", false},
			{"default", "get", "", "pods", "exec", "web-1", false},
			{"default", "update", "", "pods", "", "web-1", false},
			{"default", "get", "", "pods", "log", "web-1", false},
			{other, "update", "coordination.k8s.io", "leases", "", leaseName, false},
			{other, "get", "coordination.k8s.io", "leases", "", leaseName, false},
			{other, "create", "coordination.k8s.io", "leases", "", "", false},
			{Namespace, "update", "coordination.k8s.io", "leases", "", "another-lease", false},
			{Namespace, "delete", "coordination.k8s.io", "leases", "", leaseName, false},
			{Namespace, "patch", "coordination.k8s.io", "leases", "", leaseName, false},
			{Namespace, "update", "", "configmaps", "", "kube-root-ca.crt", false},
			{other, "update", "", "configmaps", "", leaseName, false},
			{"default", "create", "", "events", "", "", false},
		},
	}
	for sa, checks := range cases {
		user := "system:serviceaccount:" + Namespace + ":" + sa
		for _, c := range checks {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{
					Namespace: c.ns, Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.sub, Name: c.name,
				},
			}}
			got, err := admin.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
			require.NoError(t, err)
			assert.Equal(t, c.allowed, got.Status.Allowed, "%s: %s (reason %q)", sa, c, got.Status.Reason)
		}
	}
}
