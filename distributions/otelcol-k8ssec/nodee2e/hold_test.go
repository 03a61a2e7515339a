package nodee2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// hold turns the test into the cluster a person tries the product on (make node):
// deployed as the test deploys it, then held until Ctrl-C instead of attacked.
var hold = flag.Bool("hold", false, "after deploying, print how to use the cluster and wait for Ctrl-C (make node) instead of running the scenarios")

// holdForAPerson prints the commands that reach the cluster and waits for an interrupt;
// the test's cleanups then stop and remove everything.
func (d *deployment) holdForAPerson(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf(`
otelcol-k8ssec is deployed on a single-node cluster. In another shell:

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get pods -A
  kubectl run demo --image=%s --image-pull-policy=Never -- sleep 3600
  kubectl exec -it demo -- sh -c 'cat /etc/shadow; nc -w 2 %s 9'
  kubectl -n %s logs -l app.kubernetes.io/name=otelcol-k8ssec --tail=-1 | grep -E '"rule":"(Shell|Sensitive|Exec)'

The last command shows the alerts both gateway tiers print (Falco JSON lines). Press Ctrl-C
here to stop the cluster and remove everything it made.
`, d.node.Kubeconfig, d.node.KubectlPath(), workloadImage, d.node.HostIP, namespace)
	<-ctx.Done()
	t.Log("interrupted: stopping the cluster")
}
