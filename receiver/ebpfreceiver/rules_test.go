package ebpfreceiver

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

// runtimeRulesMatching names the default runtime pack's rules that e, a
// record as this receiver wrote it, matches: the rules read what the kernel
// reported, not a hand-made event.
func runtimeRulesMatching(t *testing.T, e event) []string {
	t.Helper()
	data, ok := rulepacks.Pack("runtime")
	require.True(t, ok)
	set, err := rules.Load([]rules.Source{{Name: "runtime", Data: data}}, rules.Options{})
	require.NoError(t, err)
	ev := rules.EventFromRecord(e.LogRecord, e.Resource.Attributes())
	var names []string
	for _, m := range rules.NewEngine(set, rules.StateConfig{}).Evaluate(&ev, nil) {
		names = append(names, m.Rule.Name)
	}
	return names
}
