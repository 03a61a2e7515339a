package kubeeventsreceiver

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRestartMidStreamExactlyOnce stops the receiver while Events are being
// created and starts another on the same file_storage: every Event is emitted
// exactly once by one of the two.
func TestRestartMidStreamExactlyOnce(t *testing.T) {
	c, cs := cluster(t)
	const ns = "restart"
	createNamespace(t, cs, ns)
	dir := t.TempDir()
	opts := rcvOpts{storageDir: dir, mutate: func(cfg *Config) { cfg.Namespaces = []string{ns}; cfg.MaxBatchSize = 7 }}
	a := startReceiver(t, c.Config, opts)

	const n = 150
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		createEvents(t, cs, ns, "ev", n)
	}()
	waitFor(t, "a part of the stream", func() bool { return len(records(a.sink)) >= 40 })
	a.stop(t)
	got := len(records(a.sink))
	require.Less(t, got, n, "the restart must happen mid-stream")

	b := startReceiver(t, c.Config, opts)
	wg.Wait()
	createEvents(t, cs, ns, "sentinel", 1)
	waitFor(t, "the sentinel", func() bool { return occurrencesIn(ns, b.sink)["sentinel-0#1"] == 1 })

	expectOnce(t, ns, append(names("ev", n), "sentinel-0#1"), a.sink, b.sink)
	assert.Positive(t, len(records(b.sink)))
	assert.Zero(t, counterValue(t, b, "otelcol_receiver_kube_events_relists"), "a resume watches from the checkpoint, it does not relist")
	t.Logf("first receiver emitted %d, second %d", got, len(records(b.sink)))
}

// TestGoneAfterCompactionExactlyOnce: while the receiver is down, Events are
// created and one is repeated, and etcd is compacted past the checkpoint. The
// restarted receiver's watch gets 410 Gone; it relists and emits exactly what
// it had not: the new Events and the repeat, not the old ones.
func TestGoneAfterCompactionExactlyOnce(t *testing.T) {
	// Without the watch cache, watches are served by etcd and see its compaction.
	c, cs := cluster(t, "--watch-cache=false")
	ctx := context.Background()
	const ns = "gone"
	createNamespace(t, cs, ns)
	dir := t.TempDir()
	opts := rcvOpts{storageDir: dir, mutate: func(cfg *Config) { cfg.MaxBatchSize = 5 }}
	a := startReceiver(t, c.Config, opts)
	createEvents(t, cs, ns, "old", 20)
	waitFor(t, "the old events", func() bool { return len(occurrencesIn(ns, a.sink)) == 20 })
	a.stop(t)
	expectOnce(t, ns, names("old", 20), a.sink)

	createEvents(t, cs, ns, "new", 30)
	repeat, err := cs.CoreV1().Events(ns).Get(ctx, "old-3", metav1.GetOptions{})
	require.NoError(t, err)
	repeat.Count = 2
	_, err = cs.CoreV1().Events(ns).Update(ctx, repeat, metav1.UpdateOptions{})
	require.NoError(t, err)
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	rev, err := strconv.ParseInt(list.ResourceVersion, 10, 64)
	require.NoError(t, err)
	c.CompactEtcd(rev)

	b := startReceiver(t, c.Config, opts)
	createEvents(t, cs, ns, "sentinel", 1)
	waitFor(t, "the sentinel", func() bool { return occurrencesIn(ns, b.sink)["sentinel-0#1"] == 1 })

	expectOnce(t, ns, append(names("new", 30), "old-3#2", "sentinel-0#1"), b.sink)
	assert.Equal(t, int64(1), counterValue(t, b, "otelcol_receiver_kube_events_relists"), "one relist, after 410 Gone")
	assert.GreaterOrEqual(t, counterValue(t, b, "otelcol_receiver_kube_events_events_deduplicated"), int64(19),
		"the old events the relist returned are counted as deduplicated")
	assert.NotEmpty(t, b.logs.FilterMessageSnippet("410 Gone").All(), "the relist is logged")
}
