package ingresslogreceiver

import (
	"path/filepath"
	"strings"
)

// podMeta is what a container log file's path says about its pod.
type podMeta struct {
	namespace, pod, uid, container, containerID string
}

// podFromPath reads the kubelet's log paths:
//
//	/var/log/containers/<pod>_<namespace>_<container>-<container id>.log
//	/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
func podFromPath(path string) (podMeta, bool) {
	dir, file := filepath.Split(path)
	if strings.HasSuffix(dir, "/containers/") && strings.HasSuffix(file, ".log") {
		parts := strings.Split(strings.TrimSuffix(file, ".log"), "_")
		if len(parts) != 3 {
			return podMeta{}, false
		}
		last := parts[2]
		dash := strings.LastIndexByte(last, '-')
		if dash < 1 || len(last)-dash-1 != 64 {
			return podMeta{}, false
		}
		return podMeta{pod: parts[0], namespace: parts[1], container: last[:dash], containerID: last[dash+1:]}, true
	}
	container := filepath.Base(dir)
	podDir := filepath.Base(filepath.Dir(filepath.Clean(dir)))
	if !strings.Contains(path, "/pods/") || container == "" {
		return podMeta{}, false
	}
	parts := strings.Split(podDir, "_")
	if len(parts) != 3 {
		return podMeta{}, false
	}
	return podMeta{namespace: parts[0], pod: parts[1], uid: parts[2], container: container}, true
}
