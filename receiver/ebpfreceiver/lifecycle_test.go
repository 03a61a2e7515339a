package ebpfreceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// The collector may shut a component down again (after a failed Start of
// another one, say): a second Shutdown does nothing, and does not read the
// loss counters of maps the first one closed.
func TestShutdownTwice(t *testing.T) {
	requireRoot(t)
	rcv := startReceiver(t, newTelemetry(t), consumertest.NewNop(), nil)
	assert.NoError(t, rcv.Shutdown(context.Background()))
	assert.NotPanics(t, func() { assert.NoError(t, rcv.Shutdown(context.Background())) })
}
