package testenv

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// recorder is a testing.TB that notes how Require ended it instead of ending.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci, ok               bool
		wantSkip, wantFailed bool
	}{
		{ci: false, ok: true},
		{ci: true, ok: true},
		{ci: false, ok: false, wantSkip: true},
		{ci: true, ok: false, wantFailed: true},
	} {
		ci := ""
		if tc.ci {
			ci = "true"
		}
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Require(r, tc.ok, "a prerequisite")
		assert.Equal(t, tc.wantSkip, r.skipped, "ci=%v ok=%v: skipped", tc.ci, tc.ok)
		assert.Equal(t, tc.wantFailed, r.failed, "ci=%v ok=%v: failed", tc.ci, tc.ok)
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		assert.False(t, seen[p], "port %d handed out twice", p)
		assert.True(t, p >= portLow && p < portHigh, "port %d outside %d-%d", p, portLow, portHigh)
		seen[p] = true
	}
}
