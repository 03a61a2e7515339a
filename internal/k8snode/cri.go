package k8snode

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// removePods stops and removes every pod sandbox through containerd's CRI, as the
// kubelet would: containers and their shims end, CNI releases each pod's address and
// veth, the network namespaces go. It runs after the kubelet has stopped (nothing
// restarts them) and before containerd stops.
func (n *Node) removePods(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+n.containerd, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Errorf("k8snode: CRI: %v", err)
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("k8snode: CRI: listing pod sandboxes: %v", err)
		return
	}
	var logDirs []string
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			t.Errorf("k8snode: CRI: stopping pod %s: %v", sandboxName(sb), err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			t.Errorf("k8snode: CRI: removing pod %s: %v", sandboxName(sb), err)
		}
		if m := sb.Metadata; m != nil {
			logDirs = append(logDirs, m.Namespace+"_"+m.Name+"_"+m.Uid)
		}
	}
	removePodLogs(logDirs)
}

func sandboxName(sb *runtimeapi.PodSandbox) string {
	if sb.Metadata == nil {
		return sb.Id
	}
	return fmt.Sprintf("%s/%s", sb.Metadata.Namespace, sb.Metadata.Name)
}
