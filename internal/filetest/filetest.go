// Package filetest writes the log files the file-tailing receivers' tests read.
package filetest

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// AppendLines appends each line and a newline to path, creating it 0600.
func AppendLines(t testing.TB, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	for _, l := range lines {
		_, err = f.WriteString(l + "\n")
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}
