package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCover(t *testing.T) {
	c, err := ParseCover("falco:Backdoored library loaded into SSHD (CVE-2024-3094)")
	require.NoError(t, err)
	assert.Equal(t, Cover{Anchor: "falco", ID: "Backdoored library loaded into SSHD (CVE-2024-3094)"}, c)

	c, err = ParseCover("falco:Run shell untrusted (partly)")
	require.NoError(t, err)
	assert.Equal(t, Cover{Anchor: "falco", ID: "Run shell untrusted", Partly: true}, c)

	c, err = ParseCover("crs:942100")
	require.NoError(t, err)
	assert.Equal(t, Cover{Anchor: "crs", ID: "942100"}, c)

	for _, bad := range []string{"TRC-1010", "tracee:", "tracee: (partly)", "falco: Terminal shell in container", "sigmа:x", "Falco:x"} {
		_, err := ParseCover(bad)
		assert.Error(t, err, bad)
	}
}
