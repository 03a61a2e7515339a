package nodee2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 6: the gateway pods are deleted, one at a time (whichever carried the
// traffic goes), while audit events (Secrets created through
// the API, each an alert) and agent events (a pod reading /etc/shadow, each read an
// alert) flow. Every alert reaches the backend: the apiserver's webhook retries, the
// agent's queue retries, the other replica takes over. Duplicates are counted and
// logged, not failed: delivery is at least once.
func (d *deployment) gatewayPodDeleted(t *testing.T) {
	const ns, pod, n = "faults", "reader", 40
	ctx := context.Background()
	tr := startTriggers(t, d.node.HostIP)
	d.runPod(t, ns, pod, nil, "/bin/sh", "-c",
		"until wget -q -O /dev/null http://"+tr.addr+"/go; do sleep 1; done; "+
			"i=0; while [ $i -lt "+strconv.Itoa(n)+" ]; do cat /etc/shadow >/dev/null; i=$((i+1)); sleep 0.5; done; exec sleep 3600")
	gateways, err := d.node.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil || len(gateways.Items) < 2 {
		t.Fatalf("gateway pods: %v (%d)", err, len(gateways.Items))
	}

	tr.fire("go")
	created := make(chan error, 1)
	go func() {
		for i := range n {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fault-%d", i), Namespace: ns},
				StringData: map[string]string{"k": "v"}}
			if _, err := d.node.Client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				created <- err
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		created <- nil
	}()
	time.Sleep(3 * time.Second) // into the traffic, not an assertion
	deleted := time.Now()
	for i, victim := range gateways.Items {
		if i > 0 {
			// The first replacement ready before the next goes: a rollout's pace.
			d.waitReplacementReady(t, gateways.Items)
		}
		d.node.Kubectl(t, "-n", namespace, "delete", "pod", victim.Name, "--wait=false")
		t.Logf("deleted gateway pod %s %v into the traffic", victim.Name, time.Since(deleted.Add(-3*time.Second)).Round(time.Second))
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}

	secretAlert := func(a alert) bool {
		return a.Rule == "Secret created, modified or deleted by a non-system identity" &&
			a.get("k8s.namespace.name") == ns && len(a.get("k8s.audit.object.name")) > 6 && a.get("k8s.audit.object.name")[:6] == "fault-"
	}
	readAlert := func(a alert) bool { return a.Rule == "Sensitive file read" && inPod(ns, pod)(a) }
	deadline := time.Now().Add(4 * time.Minute)
	for {
		secrets := d.sink.distinct(secretAlert, "k8s.audit.object.name")
		readPIDs := len(d.sink.distinctValues(readAlert, "process.pid"))
		if len(secrets) == n && readPIDs == n {
			t.Logf("gateway pods deleted under traffic: all %d audit and %d agent alerts arrived (the last %v after the first deletion); duplicates: %d audit, %d agent",
				n, n, time.Since(deleted).Round(time.Second), d.sink.count("", secretAlert)-n, d.sink.count("", readAlert)-n)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the gateway pods: %d of %d audit alerts (Secrets %v), %d of %d agent alerts (reads) arrived\n%s",
				len(secrets), n, secrets, readPIDs, n, d.describe())
		}
		time.Sleep(time.Second)
	}
}

// waitReplacementReady waits for a gateway pod that is not one of old to be Ready.
func (d *deployment) waitReplacementReady(t *testing.T, old []corev1.Pod) {
	t.Helper()
	isOld := map[string]bool{}
	for _, p := range old {
		isOld[p.Name] = true
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		pods, err := d.node.Client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
		if err == nil {
			for _, p := range pods.Items {
				if isOld[p.Name] || p.DeletionTimestamp != nil {
					continue
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement gateway pod ready 2 minutes after the deletion (%v)\n%s", err, d.describe())
		}
	}
}
