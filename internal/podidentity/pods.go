package podidentity

import (
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Pod is an immutable snapshot of the pod fields pod identity reports; one
// value is shared by every event of the container, so never modify it.
type Pod struct {
	UID, Name, Namespace, NodeName string
	// Labels is a bounded copy (Options.MaxLabels) of the pod's labels.
	Labels        map[string]string
	ContainerName string // "" when found by pod UID only (pause container, conmon, unknown id)
	Image         string
	OwnerKind     string // controller owner reference, e.g. ReplicaSet, DaemonSet
	OwnerName     string

	runtime   string    // from the containerID scheme of the status
	labelKeys []labelKV // "k8s.pod.label.<key>" precomputed, sorted by key
}

type labelKV struct{ attr, value string }

// podIndex maps container ids and pod UIDs to Pod snapshots. It is fed by the
// informer's event handlers.
type podIndex struct {
	maxLabels int

	mu          sync.RWMutex
	byContainer map[string]*Pod     // container id -> pod with that container's name/image
	byUID       map[string]*Pod     // pod uid -> pod without container fields
	keys        map[string][]string // pod uid -> its container ids (for removal)
}

func newPodIndex(maxLabels int) *podIndex {
	return &podIndex{
		maxLabels:   maxLabels,
		byContainer: map[string]*Pod{},
		byUID:       map[string]*Pod{},
		keys:        map[string][]string{},
	}
}

func (x *podIndex) byContainerID(id string) *Pod {
	x.mu.RLock()
	p := x.byContainer[id]
	x.mu.RUnlock()
	return p
}

func (x *podIndex) byPodUID(uid string) *Pod {
	x.mu.RLock()
	p := x.byUID[uid]
	x.mu.RUnlock()
	return p
}

func (x *podIndex) len() (pods, containers int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byUID), len(x.byContainer)
}

// upsert replaces everything known about pod.
func (x *podIndex) upsert(pod *corev1.Pod) {
	base := x.snapshot(pod)
	uid := string(pod.UID)
	var ids []string
	entries := map[string]*Pod{}
	add := func(statuses []corev1.ContainerStatus) {
		for i := range statuses {
			st := &statuses[i]
			for _, cid := range []string{st.ContainerID, lastContainerID(st)} {
				rt, id := splitContainerID(cid)
				if id == "" {
					continue
				}
				if _, dup := entries[id]; dup {
					continue
				}
				p := *base
				p.ContainerName, p.Image, p.runtime = st.Name, st.Image, rt
				entries[id] = &p
				ids = append(ids, id)
			}
		}
	}
	add(pod.Status.ContainerStatuses)
	add(pod.Status.InitContainerStatuses)
	add(pod.Status.EphemeralContainerStatuses)

	x.mu.Lock()
	for _, id := range x.keys[uid] {
		delete(x.byContainer, id)
	}
	for id, p := range entries {
		x.byContainer[id] = p
	}
	x.byUID[uid] = base
	x.keys[uid] = ids
	x.mu.Unlock()
}

func (x *podIndex) remove(uid string) {
	x.mu.Lock()
	for _, id := range x.keys[uid] {
		delete(x.byContainer, id)
	}
	delete(x.keys, uid)
	delete(x.byUID, uid)
	x.mu.Unlock()
}

func lastContainerID(st *corev1.ContainerStatus) string {
	if t := st.LastTerminationState.Terminated; t != nil {
		return t.ContainerID
	}
	return ""
}

// splitContainerID splits "containerd://<id>" into ("containerd", id).
func splitContainerID(s string) (runtime, id string) {
	scheme, id, ok := strings.Cut(s, "://")
	if !ok {
		return "", ""
	}
	switch scheme {
	case "containerd":
		return RuntimeContainerd, id
	case "cri-o":
		return RuntimeCRIO, id
	case "docker":
		return RuntimeDocker, id
	}
	return scheme, id
}

func (x *podIndex) snapshot(pod *corev1.Pod) *Pod {
	p := &Pod{
		UID:       string(pod.UID),
		Name:      pod.Name,
		Namespace: pod.Namespace,
		NodeName:  pod.Spec.NodeName,
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		p.OwnerKind, p.OwnerName = ref.Kind, ref.Name
	}
	if len(pod.Labels) > 0 {
		keys := make([]string, 0, len(pod.Labels))
		for k := range pod.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if len(keys) > x.maxLabels {
			keys = keys[:x.maxLabels]
		}
		// Informer objects are read-only: share the map when nothing is cut.
		p.Labels = pod.Labels
		if len(keys) < len(pod.Labels) {
			p.Labels = make(map[string]string, len(keys))
		}
		p.labelKeys = make([]labelKV, len(keys))
		for i, k := range keys {
			v := pod.Labels[k]
			if len(keys) < len(pod.Labels) {
				p.Labels[k] = v
			}
			p.labelKeys[i] = labelKV{attrPodLabelPrefix + k, v}
		}
	}
	return p
}

// trimPod is the informer's transform: it keeps only what the index reads, so
// the informer's store does not hold full pod specs (managedFields, env, volumes...).
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // tombstones pass through
	}
	t := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            pod.Name,
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
			Labels:          pod.Labels,
			OwnerReferences: pod.OwnerReferences,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{
			ContainerStatuses:          trimStatuses(pod.Status.ContainerStatuses),
			InitContainerStatuses:      trimStatuses(pod.Status.InitContainerStatuses),
			EphemeralContainerStatuses: trimStatuses(pod.Status.EphemeralContainerStatuses),
		},
	}
	return t, nil
}

func trimStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i := range in {
		out[i] = corev1.ContainerStatus{Name: in[i].Name, Image: in[i].Image, ContainerID: in[i].ContainerID}
		if t := in[i].LastTerminationState.Terminated; t != nil && t.ContainerID != "" {
			out[i].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ContainerID: t.ContainerID}
		}
	}
	return out
}

func (x *podIndex) handlers() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				x.upsert(pod)
			}
		},
		UpdateFunc: func(_, obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				x.upsert(pod)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				x.remove(string(pod.UID))
			}
		},
	}
}
