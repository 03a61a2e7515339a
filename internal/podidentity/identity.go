package podidentity

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute keys (OpenTelemetry semantic conventions, plus k8ssec.process.host).
const (
	AttrContainerID        = "container.id"
	AttrContainerRuntime   = "container.runtime.name" // semconv ≥1.29; was container.runtime
	AttrContainerImageName = "container.image.name"
	AttrPodUID             = "k8s.pod.uid"
	AttrPodName            = "k8s.pod.name"
	AttrNamespace          = "k8s.namespace.name"
	AttrNodeName           = "k8s.node.name"
	AttrContainerName      = "k8s.container.name"
	AttrProcessHost        = "k8ssec.process.host"
	AttrPodPending         = "k8ssec.k8s.pod.pending"        // a pod's container whose pod is not known (yet)
	AttrPodPendingReason   = "k8ssec.k8s.pod.pending_reason" // why: one of the Pending* values
	attrPodLabelPrefix     = "k8s.pod.label."
)

// Why a pod's container carries no pod (Identity.PendingReason).
const (
	// PendingWatchNotSynced: the pod watch has not synced (the apiserver
	// unreachable, or refusing the watch); it keeps retrying.
	PendingWatchNotSynced = "pod_watch_not_synced"
	// PendingPodNotSeen: the watch is synced but has not seen the pod: a pod
	// this new, or one already deleted.
	PendingPodNotSeen = "pod_not_seen"
)

// Identity is what is known about the tasks in one cgroup. The zero value
// (Resolved false) means the cgroup could not be resolved: Attributes then
// writes nothing, not even k8ssec.process.host.
type Identity struct {
	// Resolved is true when the cgroup was found (by id or from /proc).
	Resolved bool
	// Host is true for processes outside any container or pod cgroup.
	Host        bool
	ContainerID string
	Runtime     string
	PodUID      string
	CgroupPath  string // relative to the cgroup2 root, e.g. /kubepods.slice/...
	// Pod is set when the informer knows the pod; shared and immutable.
	Pod *Pod
	// PodPending: the cgroup is a pod's container but the pod watch does not
	// know the pod: not synced yet (the apiserver unreachable), or the pod too
	// new. Its metadata follows on later events.
	PodPending bool
	// PendingReason says why, when PodPending: PendingWatchNotSynced or
	// PendingPodNotSeen.
	PendingReason string
}

// Attributes writes the identity into dst: nothing for an unresolved
// identity; k8ssec.process.host for a resolved one; container.* when a
// container id is known; k8s.* when the pod is known (k8s.pod.uid also from
// the cgroup path alone).
func (id *Identity) Attributes(dst pcommon.Map) {
	if !id.Resolved {
		return
	}
	dst.PutBool(AttrProcessHost, id.Host)
	if id.ContainerID != "" {
		dst.PutStr(AttrContainerID, id.ContainerID)
	}
	if id.Runtime != "" {
		dst.PutStr(AttrContainerRuntime, id.Runtime)
	}
	if id.PodUID != "" {
		dst.PutStr(AttrPodUID, id.PodUID)
	}
	p := id.Pod
	if p == nil {
		if id.PodPending {
			dst.PutBool(AttrPodPending, true)
			dst.PutStr(AttrPodPendingReason, id.PendingReason)
		}
		return
	}
	dst.PutStr(AttrPodName, p.Name)
	dst.PutStr(AttrNamespace, p.Namespace)
	if p.NodeName != "" {
		dst.PutStr(AttrNodeName, p.NodeName)
	}
	if p.ContainerName != "" {
		dst.PutStr(AttrContainerName, p.ContainerName)
	}
	if p.Image != "" {
		dst.PutStr(AttrContainerImageName, imageName(p.Image))
	}
	if p.OwnerName != "" {
		if k := OwnerAttr(p.OwnerKind); k != "" {
			dst.PutStr(k, p.OwnerName)
		}
	}
	for _, l := range p.labelKeys {
		dst.PutStr(l.attr, l.value)
	}
}

// imageName strips the tag or digest: semconv's container.image.name is the
// repository ("gcr.io/opentelemetry/operator"); tags go to container.image.tags.
func imageName(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, ':'); i >= 0 && !strings.Contains(image[i:], "/") {
		image = image[:i]
	}
	return image
}

// OwnerAttr is the semantic-convention attribute naming a pod's controller of
// this kind (k8s.replicaset.name for ReplicaSet ...), or "" for other kinds.
func OwnerAttr(kind string) string {
	switch kind {
	case "ReplicaSet":
		return "k8s.replicaset.name"
	case "DaemonSet":
		return "k8s.daemonset.name"
	case "StatefulSet":
		return "k8s.statefulset.name"
	case "Job":
		return "k8s.job.name"
	case "ReplicationController":
		return "k8s.replicationcontroller.name"
	}
	return ""
}
