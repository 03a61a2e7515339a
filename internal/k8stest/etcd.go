package k8stest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// CompactEtcd compacts etcd's history up to revision (a resourceVersion the
// apiserver handed out), physically, as the apiserver's own compaction does every
// few minutes: watches and lists from older resourceVersions are then answered
// with 410 Gone (when the apiserver serves them from etcd: start it with
// --watch-cache=false). It uses etcd's JSON gateway, so tests need no etcd client.
func (c *Cluster) CompactEtcd(revision int64) {
	c.t.Helper()
	body := `{"revision":"` + strconv.FormatInt(revision, 10) + `","physical":true}`
	resp, err := http.Post(c.EtcdURL+"/v3/kv/compaction", "application/json", bytes.NewBufferString(body))
	if err != nil {
		c.t.Fatalf("k8stest: compacting etcd: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("k8stest: compacting etcd at %d: %s", revision, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, out))
	}
}
