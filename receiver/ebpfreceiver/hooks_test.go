package ebpfreceiver

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/receiver/ebpfreceiver/internal/metadatatest"
)

// TestHookModesAreLogged: the default configuration asks for every hook; on
// a kernel that runs neither fentry nor kprobes (this one) the receiver
// starts, says at start that each hook is unavailable and why, and reports
// from the tracepoints; kill_on_escalation refuses to start instead.
func TestHookModesAreLogged(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/sys/kernel/tracing/kprobe_events"); err == nil {
		t.Skip("this kernel has kprobes: the probe package's qemu tests cover the hooks")
	}
	core, logs := observer.New(zap.InfoLevel)
	set := metadatatest.NewSettings(newTelemetry(t))
	set.Logger = zap.New(core)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.RingBufferSize = 1 << 20
	rcv, err := f.CreateLogs(context.Background(), set, cfg, new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	modes := logs.FilterMessageSnippet("kernel hooks").All()
	require.Len(t, modes, 1)
	assert.Equal(t, map[string]string{"commit_creds": "unavailable", "security_file_open": "unavailable",
		"tcp_connect": "unavailable", "inet_csk_accept": "unavailable"}, modes[0].ContextMap()["hooks"])
	assert.Len(t, logs.FilterMessageSnippet("kernel hook unavailable").All(), 4, "each says why")
	assert.NotEmpty(t, logs.FilterMessageSnippet("could not be loaded").FilterField(zap.String("programs", "escalation")).All())

	// Another configuration: one equal pointer would get the running receiver back
	// (a logs and a metrics pipeline share the receiver of one configuration).
	escalation := *cfg
	escalation.Enforcement.KillOnEscalation = true
	rcv2, err := f.CreateLogs(context.Background(), metadatatest.NewSettings(newTelemetry(t)), &escalation, new(consumertest.LogsSink))
	require.NoError(t, err)
	err = rcv2.Start(context.Background(), componenttest.NewNopHost())
	assert.ErrorContains(t, err, "kill_on_escalation needs the commit_creds hook")
}
