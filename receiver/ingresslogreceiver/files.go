package ingresslogreceiver

import (
	"context"
	"errors"
	"io/fs"
	"os"
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
	partial map[string]pendingPiece
	pods    map[string]podInfo
}

// pendingPiece is a file's line so far, up to maxPartial bytes, and when it
// last grew.
type pendingPiece struct {
	b  []byte
	at time.Time
}

type podInfo struct {
	meta podMeta
	ok   bool
}

// maxPodCache bounds the path cache; paths come and go with pods.
const maxPodCache = 4096

// partialGrace is how long a piece of a line whose file is gone is kept:
// the file consumer reads what is left of a removed file within a poll or
// two, and a runtime writes the rest of a line right after its piece.
var partialGrace = time.Minute

func (f *fileStates) init() {
	f.partial = map[string]pendingPiece{}
	f.pods = map[string]podInfo{}
}

// begin hands the file's pending piece to d and returns the path's pod.
func (f *fileStates) begin(path string, d *decoder) podInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	d.unwrap.partial = append(d.unwrap.partial[:0], f.partial[path].b...)
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
	f.partial[path] = pendingPiece{b: append([]byte(nil), d.unwrap.partial...), at: time.Now()}
	f.mu.Unlock()
}

// dropGone drops the pieces that waited partialGrace for a file no longer
// at their path (its pod deleted, or the file rotated away with no new one
// in its place), and returns how many. The file consumer says nothing when
// it lets a file go, so the path is what is checked. A file rotated with a
// new one at its path keeps its piece: the runtime may have put the rest of
// the line in the new file.
func (f *fileStates) dropGone(now time.Time) int {
	f.mu.Lock()
	var stale []string
	for path, p := range f.partial {
		if now.Sub(p.at) >= partialGrace {
			stale = append(stale, path)
		}
	}
	f.mu.Unlock()
	dropped := 0
	for _, path := range stale {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		f.mu.Lock()
		// Unless the file was read again meanwhile.
		if p, ok := f.partial[path]; ok && now.Sub(p.at) >= partialGrace {
			delete(f.partial, path)
			dropped++
		}
		f.mu.Unlock()
	}
	return dropped
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
