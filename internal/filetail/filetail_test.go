package filetail

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestValidUTF8(t *testing.T) {
	good := []byte("GET /ünïcode 200")
	bad := []byte("GET /\xff\xfe 200")
	lines := [][]byte{good, bad}
	ValidUTF8(lines)
	assert.Same(t, &good[0], &lines[0][0], "a valid line is left as it is, not copied")
	assert.Equal(t, "GET /\uFFFD 200", string(lines[1]), "invalid bytes become one U+FFFD")
	assert.True(t, utf8.Valid(lines[1]))
	assert.Zero(t, testing.AllocsPerRun(100, func() { ValidUTF8([][]byte{good}) }))
}
