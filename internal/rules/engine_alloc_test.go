package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"

	packs "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// TestNoAllocationPerEvent: events that meet no rule allocate nothing, also
// when a batch alternates between EventNames (a node's exec and file events).
func TestNoAllocationPerEvent(t *testing.T) {
	data, _ := packs.Pack("runtime")
	set, _ := Load([]Source{{Name: "r.yaml", Data: data}}, Options{})
	e := NewEngine(set, StateConfig{})
	a := event("process.exec", 0, map[string]any{"process.executable.path": "/bin/ls"})
	b := event("file.open", 0, map[string]any{"file.path": "/tmp/x"})
	allocs := testing.AllocsPerRun(200, func() { e.Evaluate(a, nil); e.Evaluate(b, nil) })
	assert.Zero(t, allocs)
	assert.Equal(t, int64(400), e.Stats().Evaluated.Load()-2, "every event was evaluated (and two warm-up ones)")
}
