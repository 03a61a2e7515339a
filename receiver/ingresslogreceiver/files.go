package ingresslogreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetail"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ingresslogreceiver/internal/metadata"
)

// fileStates is what outlives a batch of one file: the piece of a line a
// runtime split across batches, and the pod the path names. The file
// consumer reads each file from one goroutine at a time.
type fileStates struct {
	mu      sync.Mutex
	partial map[string][]byte
	pods    map[string]podInfo
}

type podInfo struct {
	meta podMeta
	ok   bool
}

// maxPodCache bounds the path cache; paths come and go with pods.
const maxPodCache = 4096

func (f *fileStates) init() {
	f.partial = map[string][]byte{}
	f.pods = map[string]podInfo{}
}

// begin hands the file's pending piece to d and returns the path's pod.
func (f *fileStates) begin(path string, d *decoder) podInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	d.unwrap.partial = append(d.unwrap.partial[:0], f.partial[path]...)
	delete(f.partial, path)
	p, ok := f.pods[path]
	if !ok {
		if len(f.pods) >= maxPodCache {
			clear(f.pods)
		}
		p.meta, p.ok = podFromPath(path)
		f.pods[path] = p
	}
	return p
}

// end keeps a piece still waiting for the rest of its line.
func (f *fileStates) end(path string, d *decoder) {
	if len(d.unwrap.partial) == 0 {
		return
	}
	f.mu.Lock()
	f.partial[path] = append([]byte(nil), d.unwrap.partial...)
	f.mu.Unlock()
}

// emit is the file consumer's callback: a batch of lines from one file.
func (r *ingressReceiver) emit(_ context.Context, lines [][]byte, attrs map[string]any, _ int64, _ []int64) error {
	path, _ := attrs[attrLogFilePath].(string)
	name, _ := attrs[attrLogFileName].(string)
	filetail.ValidUTF8(lines)
	d := r.decoders.Get().(*decoder)
	pod := r.files.begin(path, d)
	var stats lineStats
	entries := d.decode(lines, &stats)
	r.files.end(path, d)

	ctx := r.tailer.Context()
	if stats.parsed > 0 {
		r.telemetry.ReceiverIngressLogLines.Add(ctx, int64(stats.parsed), r.parsed)
	}
	if stats.malformed > 0 {
		r.telemetry.ReceiverIngressLogLines.Add(ctx, int64(stats.malformed), r.badLine)
	}
	if len(entries) == 0 {
		r.decoders.Put(d)
		return nil
	}
	strs := d.strings()
	if r.red != nil {
		if n := r.red.add(entries, strs); n > 0 {
			r.telemetry.ReceiverIngressLogMetricSeriesOverflow.Add(ctx, int64(n))
		}
	}
	if r.nextLogs == nil {
		r.decoders.Put(d)
		return nil
	}
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	putResource(rl.Resource().Attributes(), pod, path, name)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	sl.Scope().SetVersion(r.set.BuildInfo.Version)
	appendRecords(entries, strs, sl.LogRecords(), pcommon.NewTimestampFromTime(time.Now()))
	n := len(entries)
	r.decoders.Put(d)

	ctx = r.obs.StartLogsOp(ctx)
	err := filetail.Consume(ctx, r.nextLogs, logs, r.set.Logger, "access log records")
	r.obs.EndLogsOp(ctx, "access_log", n, err)
	return err
}

// putResource names the file, and the pod that wrote it when the path says.
// The pod's namespace is the proxy's; the record's k8s.namespace.name is
// the backend's, and rules read the record first.
func putResource(attrs pcommon.Map, pod podInfo, path, name string) {
	attrs.PutStr(attrLogFileName, name)
	attrs.PutStr(attrLogFilePath, path)
	if !pod.ok {
		return
	}
	m := pod.meta
	attrs.PutStr(attrNamespace, m.namespace)
	attrs.PutStr(attrPodName, m.pod)
	attrs.PutStr(attrContainerName, m.container)
	if m.uid != "" {
		attrs.PutStr(attrPodUID, m.uid)
	}
	if m.containerID != "" {
		attrs.PutStr(attrContainerID, m.containerID)
	}
}
