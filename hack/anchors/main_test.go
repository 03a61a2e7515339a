package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitRepo makes a real git repository holding files, committed.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	_, err := exec.LookPath("git")
	testenv.Require(t, err == nil, "git is not installed: apt-get install git (hack/install-deps.sh ci)")
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "snapshot"}} {
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	return dir
}

func setNamed(t *testing.T, name string) set {
	for _, s := range sets {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no set %s", name)
	return set{}
}

func extract(t *testing.T, set, repo string) []string {
	out := t.TempDir()
	_, err := extractSet(setNamed(t, set), repo, out)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(out, set+".tsv"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestFalcoRulesNamesOnly(t *testing.T) {
	repo := gitRepo(t, map[string]string{"rules/falco_rules.yaml": `
- list: shell_binaries
  items: [bash, sh]
- macro: spawned_process
  condition: evt.type = execve
- rule: Terminal shell in container
  desc: secret body text
  condition: spawned_process and container
- rule: Terminal shell in container
  override:
    condition: append
- rule: Packet socket created in container
  condition: evt.type = socket
`, "rules/falco-sandbox_rules.yaml": "- rule: Elsewhere\n  condition: x\n"})
	lines := extract(t, "falco-stable", repo)
	require.Len(t, lines, 5)
	assert.Regexp(t, `^# snapshot: github.com/falcosecurity/rules@[0-9a-f]{40}$`, lines[1])
	assert.Equal(t, "Terminal shell in container\t\trules/falco_rules.yaml", lines[3])
	assert.Equal(t, "Packet socket created in container\t\trules/falco_rules.yaml", lines[4])
	assert.NotContains(t, strings.Join(lines, "\n"), "secret body")
}

func TestTraceeDetectors(t *testing.T) {
	repo := gitRepo(t, map[string]string{
		"detectors/core_pattern.go": `package detectors
func (d *X) GetDefinition() detection.DetectorDefinition {
	return detection.DetectorDefinition{
		ID: "TRC-1011",
		ProducedEvent: v1beta1.EventDefinition{Name: "core_pattern_modification"},
		ThreatMetadata: &v1beta1.Threat{
			Name:        "Core dumps configuration file modification detected",
		},
	}
}`,
		"detectors/core_pattern_test.go": `ID: "TRC-9999"`,
		"detectors/README.md":            `ID: "TRC-8888"`,
	})
	lines := extract(t, "tracee", repo)
	require.Len(t, lines, 4)
	assert.Equal(t, "TRC-1011\tCore dumps configuration file modification detected\tdetectors/core_pattern.go", lines[3])
}

func TestSigmaSubsets(t *testing.T) {
	rule := func(id, title, status string) string {
		return "title: " + title + "\nid: " + id + "\nstatus: " + status + "\ndetection:\n  keywords: [secret]\n"
	}
	repo := gitRepo(t, map[string]string{
		"rules/linux/process_creation/a.yml":       rule("11111111-0000-0000-0000-000000000000", "Shell in tmp", "test"),
		"rules/linux/auditd/b.yml":                 rule("22222222-0000-0000-0000-000000000000", "Auditd only", "test"),
		"rules/linux/file_event/c.yml":             rule("33333333-0000-0000-0000-000000000000", "Gone", "deprecated"),
		"rules/web/webserver_generic/d.yml":        rule("44444444-0000-0000-0000-000000000000", "SQL Injection Strings", "test"),
		"rules/application/kubernetes/audit/e.yml": rule("55555555-0000-0000-0000-000000000000", "Exec", "test"),
	})
	lines := extract(t, "sigma-linux", repo)
	require.Len(t, lines, 4, "auditd is not tracked, deprecated rules are dropped")
	assert.Equal(t, "11111111-0000-0000-0000-000000000000\tShell in tmp\trules/linux/process_creation/a.yml", lines[3])
	lines = extract(t, "sigma-web", repo)
	require.Len(t, lines, 4)
	assert.Contains(t, lines[3], "SQL Injection Strings")
}

func TestCRSRulesWithAMessage(t *testing.T) {
	repo := gitRepo(t, map[string]string{"rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf": `
# id:999999 in a comment, msg:'not a rule'
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 1" "id:942011,phase:1,pass,nolog,skipAfter:END"
SecRule REQUEST_COOKIES|ARGS "@detectSQLi" \
    "id:942100,\
    phase:2,\
    block,\
    msg:'SQL Injection Attack Detected via libinjection',\
    chain"
    SecRule ARGS "@rx x" "t:none,msg:'chained, no id'"
`, "rules/REQUEST-949-BLOCKING-EVALUATION.conf": `SecAction "id:949110,msg:'Inbound Anomaly Score Exceeded'"`,
		"rules/RESPONSE-950-DATA-LEAKAGES.conf": `SecRule X "y" "id:950100,msg:'response'"`})
	lines := extract(t, "crs", repo)
	require.Len(t, lines, 4, strings.Join(lines, "\n"))
	assert.Equal(t, "942100\tSQL Injection Attack Detected via libinjection\trules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf", lines[3])
}

func TestEmptySnapshotIsAnError(t *testing.T) {
	repo := gitRepo(t, map[string]string{"README.md": "moved"})
	_, err := extractSet(setNamed(t, "falco-stable"), repo, t.TempDir())
	assert.ErrorContains(t, err, "layout changed")
}
