// Command anchors extracts the public anchor rule sets that docs/coverage.md
// measures the rule packs against, from git snapshots of their repositories,
// into docs/coverage/anchors/<set>.tsv: one rule a line, its id (or name),
// title and source file, and the snapshot's commit in the header. Only names
// and ids are kept, never a rule's body.
//
// CI has no GitHub access, so the lists are committed; this is how they are
// refreshed (each flag names a clone or a bare git directory; HEAD is read):
//
//	go run ./hack/anchors -out docs/coverage/anchors \
//	  -falco-rules ../rules -falco-plugins ../plugins -tracee ../tracee \
//	  -sigma ../sigma -crs ../coreruleset
//
// then `go test ./rules -run TestCoverageDoc -update` regenerates the document.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// anchor is one rule of a public set.
type anchor struct{ id, title, file string }

// set is one anchor set: which repository, which files, how to read them.
type set struct {
	name, repo string // repo: the flag naming its git directory
	url        string
	match      func(file string) bool
	extract    func(file string, data []byte) ([]anchor, error)
}

var sets = []set{
	{name: "falco-stable", repo: "falco-rules", url: "github.com/falcosecurity/rules",
		match: exactly("rules/falco_rules.yaml"), extract: falcoRules},
	{name: "falco-incubating", repo: "falco-rules", url: "github.com/falcosecurity/rules",
		match: exactly("rules/falco-incubating_rules.yaml"), extract: falcoRules},
	{name: "falco-sandbox", repo: "falco-rules", url: "github.com/falcosecurity/rules",
		match: exactly("rules/falco-sandbox_rules.yaml"), extract: falcoRules},
	{name: "falco-k8saudit", repo: "falco-plugins", url: "github.com/falcosecurity/plugins",
		match: exactly("plugins/k8saudit/rules/k8s_audit_rules.yaml"), extract: falcoRules},
	{name: "tracee", repo: "tracee", url: "github.com/aquasecurity/tracee",
		match: goUnder("signatures/", "detectors/"), extract: traceeDetectors},
	{name: "sigma-k8s-audit", repo: "sigma", url: "github.com/SigmaHQ/sigma",
		match: yamlUnder("rules/application/kubernetes/audit/"), extract: sigmaRule},
	{name: "sigma-web", repo: "sigma", url: "github.com/SigmaHQ/sigma",
		match: yamlUnder("rules/web/"), extract: sigmaRule},
	// Linux: only the categories our kernel sensor observes itself (process
	// creation, file events, network connections); auditd, syslog and
	// daemon-log rules read log sources the distribution does not ingest.
	{name: "sigma-linux", repo: "sigma", url: "github.com/SigmaHQ/sigma",
		match:   yamlUnder("rules/linux/process_creation/", "rules/linux/file_event/", "rules/linux/network_connection/"),
		extract: sigmaRule},
	{name: "crs", repo: "crs", url: "github.com/coreruleset/coreruleset",
		match: func(f string) bool {
			return strings.HasPrefix(f, "rules/REQUEST-9") && strings.HasSuffix(f, ".conf")
		}, extract: crsRules},
}

func main() {
	out := flag.String("out", "docs/coverage/anchors", "directory for the <set>.tsv files")
	repos := map[string]*string{}
	for _, s := range sets {
		if repos[s.repo] == nil {
			repos[s.repo] = flag.String(s.repo, "", "git directory (clone or bare) of "+s.url)
		}
	}
	flag.Parse()
	done := 0
	for _, s := range sets {
		dir := *repos[s.repo]
		if dir == "" {
			continue // refresh only the sets whose repository was given
		}
		n, err := extractSet(s, dir, *out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "anchors: %s: %v\n", s.name, err)
			os.Exit(1)
		}
		fmt.Printf("%s: %d rules\n", s.name, n)
		done++
	}
	if done == 0 {
		fmt.Fprintln(os.Stderr, "anchors: give at least one repository flag (-h lists them)")
		os.Exit(2)
	}
}

func extractSet(s set, dir, out string) (int, error) {
	commit, err := git(dir, "rev-parse", "HEAD")
	if err != nil {
		return 0, err
	}
	commit = bytes.TrimSpace(commit)
	list, err := git(dir, "ls-tree", "-r", "--name-only", "HEAD")
	if err != nil {
		return 0, err
	}
	var all []anchor
	seen := map[string]string{}
	for _, f := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		if !s.match(f) {
			continue
		}
		data, err := git(dir, "show", "HEAD:"+f)
		if err != nil {
			return 0, err
		}
		as, err := s.extract(f, data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		for _, a := range as {
			if prev, dup := seen[a.id]; dup {
				if prev == a.file {
					continue // a rule redefined (appended to) in its own file
				}
				return 0, fmt.Errorf("%s: %q also in %s", f, a.id, prev)
			}
			seen[a.id] = a.file
			all = append(all, a)
		}
	}
	if len(all) == 0 {
		return 0, fmt.Errorf("no rules found in %s: has the repository's layout changed?", dir)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].file != all[j].file {
			return all[i].file < all[j].file
		}
		return s.name == "crs" && all[i].id < all[j].id
	})
	var b strings.Builder
	fmt.Fprintf(&b, "# anchor set %s: rule names/ids only, extracted by hack/anchors\n", s.name)
	fmt.Fprintf(&b, "# snapshot: %s@%s\n", s.url, commit)
	b.WriteString("# id\ttitle\tfile\n")
	for _, a := range all {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", clean(a.id), clean(a.title), a.file)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	return len(all), os.WriteFile(filepath.Join(out, s.name+".tsv"), []byte(b.String()), 0o644)
}

func git(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func clean(s string) string {
	return strings.Join(strings.Fields(s), " ") // no tabs or newlines inside a field
}

func exactly(name string) func(string) bool { return func(f string) bool { return f == name } }

func under(f string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(f, d) {
			return true
		}
	}
	return false
}

func yamlUnder(dirs ...string) func(string) bool {
	return func(f string) bool {
		return under(f, dirs) && (strings.HasSuffix(f, ".yml") || strings.HasSuffix(f, ".yaml"))
	}
}

func goUnder(dirs ...string) func(string) bool {
	return func(f string) bool {
		return under(f, dirs) && strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go")
	}
}

// falcoRules: every `- rule:` entry's name; the name is Falco's identifier.
func falcoRules(file string, data []byte) ([]anchor, error) {
	var entries []map[string]any
	if err := yaml.Unmarshal(data, &entries); err != nil {
		return nil, err
	}
	var as []anchor
	for _, e := range entries {
		name, ok := e["rule"].(string)
		if !ok {
			continue
		}
		if _, isOverride := e["override"]; isOverride {
			continue // changes a rule defined elsewhere
		}
		as = append(as, anchor{id: name, file: file}) // the name is the id; no title
	}
	return as, nil
}

var (
	traceeID   = regexp.MustCompile(`ID:\s*"(TRC-[0-9]+)"`)
	traceeName = regexp.MustCompile(`(?s)ThreatMetadata:.*?Name:\s*"([^"]+)"`)
	traceeSig  = regexp.MustCompile(`"id":\s*"(TRC-[0-9]+)"[^}]*?"name":\s*"([^"]+)"`)
)

// traceeDetectors: a detector's TRC id and its threat's name (detectors/ of
// Go code; signatures/ where an older layout still keeps some).
func traceeDetectors(file string, data []byte) ([]anchor, error) {
	if m := traceeID.FindSubmatch(data); m != nil {
		title := ""
		if n := traceeName.FindSubmatch(data); n != nil {
			title = string(n[1])
		}
		return []anchor{{id: string(m[1]), title: title, file: file}}, nil
	}
	var as []anchor
	for _, m := range traceeSig.FindAllSubmatch(data, -1) {
		as = append(as, anchor{id: string(m[1]), title: string(m[2]), file: file})
	}
	return as, nil
}

// sigmaRule: a Sigma rule's id (a UUID) and title.
func sigmaRule(file string, data []byte) ([]anchor, error) {
	var r struct {
		ID, Title, Status string
	}
	if err := yaml.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.ID == "" || r.Status == "deprecated" || r.Status == "unsupported" {
		return nil, nil
	}
	return []anchor{{id: r.ID, title: r.Title, file: file}}, nil
}

var (
	crsID  = regexp.MustCompile(`\bid:([0-9]+)`)
	crsMsg = regexp.MustCompile(`\bmsg:'([^']*)'`)
)

// crsRules: the CRS rules that detect something, i.e. that carry a msg; the
// rest are flow control (paranoia-level skips, initialization, scoring).
func crsRules(file string, data []byte) ([]anchor, error) {
	text := strings.ReplaceAll(string(data), "\\\n", " ") // join continuation lines
	var as []anchor
	for _, block := range splitRules(text) {
		id, msg := crsID.FindStringSubmatch(block), crsMsg.FindStringSubmatch(block)
		if id == nil || msg == nil || strings.HasPrefix(path.Base(file), "REQUEST-901") ||
			strings.HasPrefix(path.Base(file), "REQUEST-949") {
			continue
		}
		as = append(as, anchor{id: id[1], title: msg[1], file: file})
	}
	return as, nil
}

// splitRules cuts a .conf into its SecRule/SecAction statements; a chain's
// continuation (the chained SecRule) belongs to the statement it follows
// only by its lack of an id, which crsRules ignores.
func splitRules(text string) []string {
	var blocks []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "SecRule") || strings.HasPrefix(t, "SecAction") {
			if cur.Len() > 0 {
				blocks = append(blocks, cur.String())
			}
			cur.Reset()
		}
		if strings.HasPrefix(t, "#") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if cur.Len() > 0 {
		blocks = append(blocks, cur.String())
	}
	return blocks
}
