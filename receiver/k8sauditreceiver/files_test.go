package k8sauditreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/filetest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/storagetest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/k8sauditreceiver/internal/metadatatest"
)

// fileReceiver is a k8s_audit receiver that tails dir/audit*.log.
type fileReceiver struct {
	rcv     component.Component
	storage extension.Extension
}

func startFileReceiver(t *testing.T, tt *componenttest.Telemetry, next consumer.Logs, logDir, storageDir string) *fileReceiver {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Webhook.Enabled = false
	files := cfg.Files.GetOrInsertDefault()
	files.Include = []string{filepath.Join(logDir, "audit*.log")}
	files.StartAt = "beginning"
	files.PollInterval = 20 * time.Millisecond
	files.StorageID = &storagetest.ID
	cfg.Files = configoptional.Some(*files)
	require.NoError(t, cfg.Validate())

	fr := &fileReceiver{storage: storagetest.Start(t, storageDir)}
	var err error
	fr.rcv, err = NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	host := storagetest.Host(componenttest.NewNopHost(), fr.storage)
	require.NoError(t, fr.rcv.Start(context.Background(), host))
	return fr
}

func (fr *fileReceiver) stop(t *testing.T) {
	require.NoError(t, fr.rcv.Shutdown(context.Background()))
	require.NoError(t, fr.storage.Shutdown(context.Background()))
}

func auditLines(t *testing.T, from, to int) []string {
	var lines []string
	for i := from; i <= to; i++ {
		b, err := json.Marshal(auditEvent(fmt.Sprintf("id-%02d", i)))
		require.NoError(t, err)
		lines = append(lines, string(b))
	}
	return lines
}

func auditIDs(sink *consumertest.LogsSink) []string {
	var ids []string
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					ids = append(ids, idOf(lrs.At(k)))
				}
			}
		}
	}
	return ids
}

func idRange(from, to int) []string {
	var ids []string
	for i := from; i <= to; i++ {
		ids = append(ids, fmt.Sprintf("id-%02d", i))
	}
	return ids
}

func waitForIDs(t *testing.T, sink *consumertest.LogsSink, want []string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(auditIDs(sink)) >= len(want) }, 10*time.Second, 10*time.Millisecond,
		"want %d events, have %v", len(want), auditIDs(sink))
	// Give a duplicate the chance to show up before judging.
	time.Sleep(200 * time.Millisecond)
	assert.ElementsMatch(t, want, auditIDs(sink), "every audit event exactly once")
}

// The file path follows the apiserver's log across rotation (the apiserver
// renames audit.log to audit-<time>.log and opens a new audit.log), reports a
// garbage line without losing its neighbours, and resumes from its checkpoint
// after a restart without re-reading or skipping a line.
func TestFilesTailAcrossRotationAndRestart(t *testing.T) {
	logDir, storageDir := t.TempDir(), t.TempDir()
	logPath := filepath.Join(logDir, "audit.log")
	tt := newTelemetry(t)
	sink := new(consumertest.LogsSink)

	filetest.AppendLines(t, logPath, auditLines(t, 1, 3)...)
	filetest.AppendLines(t, logPath, `{"auditID":"half`)
	filetest.AppendLines(t, logPath, auditLines(t, 4, 5)...)
	fr := startFileReceiver(t, tt, sink, logDir, storageDir)
	waitForIDs(t, sink, idRange(1, 5))

	lr := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	name, ok := lr.Attributes().Get("log.file.name")
	require.True(t, ok)
	assert.Equal(t, "audit.log", name.Str())
	metadatatest.AssertEqualReceiverK8sAuditEventsMalformed(t, tt,
		[]metricdata.DataPoint[int64]{sum(1, attribute.String("source", "file"))},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	require.NoError(t, os.Rename(logPath, filepath.Join(logDir, "audit-2026-11-29T10-00-00.000.log")))
	filetest.AppendLines(t, logPath, auditLines(t, 6, 8)...)
	waitForIDs(t, sink, idRange(1, 8))

	fr.stop(t)
	filetest.AppendLines(t, logPath, auditLines(t, 9, 10)...) // written while the collector is down

	sink2 := new(consumertest.LogsSink)
	fr2 := startFileReceiver(t, newTelemetry(t), sink2, logDir, storageDir)
	defer fr2.stop(t)
	waitForIDs(t, sink2, idRange(9, 10))
	filetest.AppendLines(t, logPath, auditLines(t, 11, 11)...)
	waitForIDs(t, sink2, idRange(9, 11))
}

// Backpressure on the file path waits and retries rather than losing lines:
// the file consumer moves its offset on whatever the callback returns.
func TestFilesRetryWhilePipelineRefuses(t *testing.T) {
	logDir := t.TempDir()
	filetest.AppendLines(t, filepath.Join(logDir, "audit.log"), auditLines(t, 1, 4)...)
	next := &flakyConsumer{err: fmt.Errorf("sending queue is full")}
	next.refusals.Store(3)
	fr := startFileReceiver(t, newTelemetry(t), next, logDir, t.TempDir())
	defer fr.stop(t)
	waitForIDs(t, &next.LogsSink, idRange(1, 4))
	assert.Less(t, next.refusals.Load(), int32(0), "the pipeline did refuse first")
}

// TestFilesRepairInvalidUTF8: a line with a byte that is not UTF-8 (a file
// written by something else, or damaged) still gives its record, with the
// byte as U+FFFD: records carry only valid strings.
func TestFilesRepairInvalidUTF8(t *testing.T) {
	logDir := t.TempDir()
	line := strings.Replace(auditLines(t, 1, 1)[0], `"username":"`, "\"username\":\"b\xffd", 1)
	require.NotEqual(t, auditLines(t, 1, 1)[0], line, "the line names a user")
	filetest.AppendLines(t, filepath.Join(logDir, "audit.log"), line)
	sink := new(consumertest.LogsSink)
	fr := startFileReceiver(t, newTelemetry(t), sink, logDir, t.TempDir())
	defer fr.stop(t)
	waitForIDs(t, sink, idRange(1, 1))
	lr := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	user, ok := lr.Attributes().Get("user.name")
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(user.Str(), "b\uFFFDd"), "got %q", user.Str())
}
