package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRepositoryDocsLinks runs the checker on this repository's README.md,
// rules/README.md and docs/*.md: every relative link there names a file and
// heading that exist.
func TestRepositoryDocsLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := UserDocs(root)
	require.NoError(t, err)
	require.Contains(t, files, filepath.Join("docs", "install.md"))
	problems, err := Check(root, files)
	require.NoError(t, err)
	for _, p := range problems {
		t.Error(p)
	}
}

func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(text), 0o644))
	}
	write("receiver/x/config.go", "package x\n")
	write("docs/a.md", "# A page\n\n## The `ebpf` receiver (development)\n\n## Same\n\n## Same\n")
	write("docs/b.md", "# B\n\n"+
		"[ok](a.md) [ok](../receiver/x/config.go) [ok](../receiver/x/) [ok](a.md#the-ebpf-receiver-development)\n"+
		"[ok](a.md#same-1) [ok](#b) [ok](https://example.com/x) `[not a link](nowhere.md)`\n"+
		"```\n[in a fence](nowhere.md)\n```\n"+
		"[bad](receiver/x/config.go) [bad](a.md#same-2) [bad](#nope) [bad](../../outside.md)\n")

	problems, err := Check(root, []string{"docs/b.md"})
	require.NoError(t, err)
	var got []string
	for _, p := range problems {
		assert.Equal(t, "docs/b.md", p.File)
		assert.Equal(t, 8, p.Line, p.String())
		got = append(got, p.Link+": "+p.Why)
	}
	assert.Equal(t, []string{
		"receiver/x/config.go: no such file or directory",
		"a.md#same-2: docs/a.md has no heading #same-2",
		"#nope: docs/b.md has no heading #nope",
		"../../outside.md: points outside the repository",
	}, got)
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Deploying to a cluster":                              "deploying-to-a-cluster",
		"ebpf (development)":                                  "ebpf-development",
		"security_rules settings":                             "security_rules-settings",
		"The k8s.event record":                                "the-k8sevent-record",
		"Send alerts to Alertmanager / Slack / falcosidekick": "send-alerts-to-alertmanager--slack--falcosidekick",
		"Build, run and test on one machine":                  "build-run-and-test-on-one-machine",
	} {
		assert.Equal(t, want, Slug(heading), heading)
	}
}
