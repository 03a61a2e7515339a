package podidentity

import "strings"

// Runtime names, as written to container.runtime.name.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// PathInfo is what a cgroup path alone says about a task.
type PathInfo struct {
	// Host is true when the path is neither below a kubepods hierarchy nor names
	// a container (e.g. /system.slice/sshd.service, /user.slice/..., /).
	Host bool
	// ContainerID is the 64-hex container id; "" when the path names none (a
	// pod's own slice, crio-conmon, host).
	ContainerID string
	// Runtime is derived from the naming (cri-containerd-, crio-, docker-,
	// libpod-, /docker/); "" when the path does not say (cgroupfs driver under
	// kubepods: <pod>/<64hex>). The pod's containerStatuses fill it in later.
	Runtime string
	// PodUID is the pod UID with dashes, from kubepods-…-pod<uid_>.slice or pod<uid>.
	PodUID string
}

// ParsePath reads a cgroup path (v2 relative to the cgroup2 root, or the path
// field of a v1 line of /proc/PID/cgroup) under the systemd and cgroupfs
// drivers for containerd, CRI-O, Docker and Podman. The deepest component
// naming a container wins, so paths nested inside a container (an init.scope
// below it, docker in docker) resolve to the innermost container.
func ParsePath(path string) PathInfo {
	var info PathInfo
	kube := false
	prevDocker := false // previous component was "docker" (cgroupfs Docker)
	prevPod := false    // previous component was a pod slice/dir
	rest := path
	for rest != "" {
		var comp string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			comp, rest = rest[:i], rest[i+1:]
		} else {
			comp, rest = rest, ""
		}
		if comp == "" {
			continue
		}
		isDocker, isPod := false, false
		slice := comp
		if i := strings.IndexByte(comp, ':'); i >= 0 {
			slice = comp[:i] // runc's "slice:prefix:id" form
		}
		switch {
		case strings.HasPrefix(slice, "kubepods") || strings.HasPrefix(slice, "kubelet-kubepods"):
			kube = true
			if uid, ok := podUIDFromSlice(slice); ok {
				info.PodUID, isPod = uid, true
			}
			if slice != comp {
				if id, rt, ok := containerFromComponent(comp, false, false); ok {
					info.ContainerID, info.Runtime = id, rt
				}
			}
		case strings.HasPrefix(comp, "pod") && isUID(comp[3:]) && kube:
			info.PodUID, isPod = comp[3:], true
		case comp == "docker":
			isDocker = true
		default:
			if id, rt, ok := containerFromComponent(comp, prevPod, prevDocker); ok {
				info.ContainerID, info.Runtime = id, rt
			}
		}
		prevDocker, prevPod = isDocker, isPod
	}
	info.Host = !kube && info.ContainerID == "" && info.PodUID == ""
	return info
}

// containerFromComponent recognises one path component naming a container.
func containerFromComponent(comp string, underPod, underDocker bool) (id, runtime string, ok bool) {
	// systemd driver: <prefix>-<id>.scope
	if s, found := strings.CutSuffix(comp, ".scope"); found {
		for _, p := range scopePrefixes {
			if rest, found := strings.CutPrefix(s, p.prefix); found && isContainerID(rest) {
				return rest, p.runtime, true
			}
		}
		return "", "", false
	}
	// containerd/runc "slice:prefix:id" form (systemd cgroup driver, v1 paths
	// as some runc versions report them).
	if i := strings.LastIndexByte(comp, ':'); i >= 0 {
		id := comp[i+1:]
		if !isContainerID(id) {
			return "", "", false
		}
		switch {
		case strings.HasSuffix(comp[:i], ":cri-containerd"):
			return id, RuntimeContainerd, true
		case strings.HasSuffix(comp[:i], ":crio"):
			return id, RuntimeCRIO, true
		case strings.HasSuffix(comp[:i], ":docker"):
			return id, RuntimeDocker, true
		}
		return id, "", true
	}
	// cgroupfs driver: crio-<id> under the pod dir, bare <id> under the pod
	// dir (containerd, cri-dockerd) or under /docker.
	if rest, found := strings.CutPrefix(comp, "crio-"); found && isContainerID(rest) {
		return rest, RuntimeCRIO, true
	}
	if isContainerID(comp) {
		switch {
		case underDocker:
			return comp, RuntimeDocker, true
		case underPod:
			return comp, "", true
		}
	}
	return "", "", false
}

var scopePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"docker-", RuntimeDocker},
	{"libpod-", RuntimePodman},
}

// podUIDFromSlice reads kubepods[-<qos>]-pod<uid_with_underscores>.slice.
func podUIDFromSlice(comp string) (string, bool) {
	s, ok := strings.CutSuffix(comp, ".slice")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(s, "-pod")
	if i < 0 {
		return "", false
	}
	uid := strings.ReplaceAll(s[i+4:], "_", "-")
	return uid, isUID(uid)
}

// isUID accepts the 8-4-4-4-12 hex form (the only one the apiserver generates).
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
