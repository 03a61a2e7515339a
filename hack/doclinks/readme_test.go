package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadmeStaysShort: the README is the front page (what it is, the quick
// start, the components, where to go next); reference text belongs in docs/.
func TestReadmeStaysShort(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(readme), 12*1024, "README.md has grown past 12 KB: move reference text into docs/")
	var headings []string
	for _, m := range regexp.MustCompile(`(?m)^## (.*)$`).FindAllStringSubmatch(string(readme), -1) {
		headings = append(headings, m[1])
	}
	assert.Equal(t, []string{"Quick start", "Components", "Where to go next"}, headings)
	assert.Contains(t, string(readme), "make run ", "the quick start builds and runs the collector")
	assert.Contains(t, string(readme), "make test ", "the quick start runs the tests")
}
