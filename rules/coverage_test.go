package rules_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

var update = flag.Bool("update", false, "rewrite docs/coverage.md")

const (
	coverageDoc = "../docs/coverage.md"
	anchorsDir  = "../docs/coverage/anchors"
	reasonsFile = "../docs/coverage/reasons.yaml"
	regenerate  = "go test ./rules -run TestCoverageDoc -update"
)

// anchorSets are the tracked sets, in the document's order: the file under
// docs/coverage/anchors, the covers: prefix that names its rules, a heading.
var anchorSets = []struct{ name, prefix, title string }{
	{"falco-stable", "falco", "Falco stable rules"},
	{"falco-incubating", "falco", "Falco incubating rules"},
	{"falco-sandbox", "falco", "Falco sandbox rules"},
	{"falco-k8saudit", "falco", "Falco k8saudit plugin rules"},
	{"tracee", "tracee", "Tracee detectors"},
	{"sigma-k8s-audit", "sigma", "Sigma Kubernetes audit rules"},
	{"sigma-web", "sigma", "Sigma web rules"},
	{"sigma-linux", "sigma", "Sigma Linux rules (process_creation, file_event, network_connection)"},
	{"crs", "crs", "OWASP CRS request rules (REQUEST-9xx)"},
}

type anchorRule struct{ id, title, file string }

type anchorList struct {
	snapshot string // repository@commit
	rules    []anchorRule
}

func readAnchors(t *testing.T, name string) anchorList {
	data, err := os.ReadFile(filepath.Join(anchorsDir, name+".tsv"))
	require.NoError(t, err)
	var l anchorList
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, "# snapshot: "); ok {
			l.snapshot = s
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		require.Len(t, f, 3, "%s.tsv: %q: want id, title, file", name, line)
		l.rules = append(l.rules, anchorRule{f[0], f[1], f[2]})
	}
	require.NotEmpty(t, l.snapshot, "%s.tsv: no snapshot line", name)
	require.NotEmpty(t, l.rules, name)
	return l
}

// ourRef is one of our rules naming an anchor.
type ourRef struct {
	rule   *rules.Rule
	partly bool
}

func (r ourRef) String() string {
	s := r.rule.ID + " " + r.rule.Name
	if !r.rule.Enabled {
		s += " (off by default)"
	}
	return s
}

// reasonFor finds the reason an anchor is not (fully) covered: its exact
// entry, else the longest pattern that matches it, a glob (path.Match) of ids
// ("942*") or "file:" and a glob of the anchor's source file
// ("file:rules/web/proxy_generic/*"), for reasons given by family.
func reasonFor(reasons map[string]string, a anchorRule) (reason, key string) {
	if r, ok := reasons[a.id]; ok {
		return r, a.id
	}
	for k, r := range reasons {
		var ok bool
		if glob, isFile := strings.CutPrefix(k, "file:"); isFile {
			ok, _ = path.Match(glob, a.file)
		} else if strings.ContainsAny(k, "*?[") {
			ok, _ = path.Match(k, a.id)
		}
		if ok && (len(k) > len(key) || len(k) == len(key) && k < key) {
			reason, key = r, k
		}
	}
	return reason, key
}

// TestCoverageDoc generates docs/coverage.md from the anchor lists, every
// default rule's covers: and the reasons file, and fails when the committed
// document differs, when a covers: entry names no anchor rule, or when an
// anchor has neither a rule nor a reason.
func TestCoverageDoc(t *testing.T) {
	var srcs []rules.Source
	for _, name := range rulepacks.PackNames() {
		data, _ := rulepacks.Pack(name)
		srcs = append(srcs, rules.Source{Name: name, Data: data})
	}
	set, err := rules.Load(srcs, rules.Options{StrictAttributes: true})
	require.NoError(t, err)

	var reasons map[string]map[string]string // set -> anchor id or glob -> reason
	data, err := os.ReadFile(reasonsFile)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &reasons))

	// Every anchor's key ("falco:<name>") and the set holding it.
	lists := map[string]anchorList{}
	setOf := map[string]string{}
	for _, s := range anchorSets {
		l := readAnchors(t, s.name)
		lists[s.name] = l
		for _, a := range l.rules {
			key := s.prefix + ":" + a.id
			if prev, dup := setOf[key]; dup {
				t.Errorf("%s is in both %s and %s: covers: could not tell them apart", key, prev, s.name)
			}
			setOf[key] = s.name
		}
	}
	for name := range reasons {
		if _, ok := lists[name]; !ok {
			t.Errorf("%s: set %q is not tracked (one of the anchorSets in rules/coverage_test.go)", reasonsFile, name)
		}
	}

	refs := map[string][]ourRef{}
	for _, r := range set.Rules {
		for _, cv := range r.Covers {
			c, err := rules.ParseCover(cv)
			require.NoError(t, err) // the loader checked the shape
			key := c.Anchor + ":" + c.ID
			if _, ok := setOf[key]; !ok {
				t.Errorf("%s:%d: rule %q: covers %q: no such rule in docs/coverage/anchors (a typo, or refresh the lists with hack/anchors)",
					r.File, r.Line, r.Name, cv)
				continue
			}
			refs[key] = append(refs[key], ourRef{rule: r, partly: c.Partly})
		}
	}

	var doc strings.Builder
	doc.WriteString("# Detection coverage\n\n")
	doc.WriteString("<!-- Generated: do not edit. `" + regenerate + "` rewrites it from\n")
	doc.WriteString("     docs/coverage/anchors/*.tsv, the rules' covers: and docs/coverage/reasons.yaml. -->\n\n")
	doc.WriteString("How the default rule packs (`rules/*.yaml`) measure up, rule by rule, against the public rule sets\n")
	doc.WriteString("users compare them with. A rule names the anchor rules whose intent it detects in `covers:`;\n")
	doc.WriteString("*partly* means it detects only some of the anchor's cases (rules/README.md, \"Coverage\").\n")
	doc.WriteString("An anchor that no rule covers has a reason. Counts are anchor rules; Sigma's and Tracee's link to\n")
	doc.WriteString("their source at the snapshot. Sigma Linux is tracked for the categories the kernel sensor observes itself\n")
	doc.WriteString("(process_creation, file_event, network_connection); CRS for its detection rules (those with a\n")
	doc.WriteString("`msg`), most of which read headers, cookies or bodies that access logs do not carry.\n\n")
	doc.WriteString("| anchor set | snapshot | rules | covered | partly | not covered | covered or partly |\n")
	doc.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	var body strings.Builder
	for _, s := range anchorSets {
		l := lists[s.name]
		setReasons := reasons[s.name]
		used := map[string]bool{}
		var covered, partly, missing int
		var rows strings.Builder
		hasTitle := false
		fileSeen := map[string]bool{}
		for _, a := range l.rules {
			hasTitle = hasTitle || a.title != ""
			fileSeen[a.file] = true
		}
		onePerFile := len(fileSeen) == len(l.rules)
		perFile := map[string]*[3]int{} // covered, partly, not covered
		var fileOrder []string
		for _, a := range l.rules {
			if perFile[a.file] == nil {
				perFile[a.file] = &[3]int{}
				fileOrder = append(fileOrder, a.file)
			}
		}
		if hasTitle {
			rows.WriteString("| anchor | title | ours |\n| --- | --- | --- |\n")
		} else {
			rows.WriteString("| anchor | ours |\n| --- | --- |\n")
		}
		for _, a := range l.rules {
			key := s.prefix + ":" + a.id
			rs := refs[key]
			sort.Slice(rs, func(i, j int) bool { return rs[i].rule.ID < rs[j].rule.ID })
			var full, part []string
			for _, r := range rs {
				if r.partly {
					part = append(part, r.String())
				} else {
					full = append(full, r.String())
				}
			}
			reason, rkey := reasonFor(setReasons, a)
			if rkey != "" {
				used[rkey] = true
			}
			var ours string
			switch {
			case len(full) > 0:
				covered++
				perFile[a.file][0]++
				if rkey == a.id {
					t.Errorf("%s: %s: %q is covered by %s: remove its reason", reasonsFile, s.name, a.id, strings.Join(full, ", "))
				}
				ours = strings.Join(append(full, prefixed("partly: ", part)...), "<br>")
			case len(part) > 0:
				partly++
				perFile[a.file][1]++
				ours = strings.Join(prefixed("partly: ", part), "<br>")
				if rkey == a.id { // what this partial cover misses; family reasons are for the uncovered
					ours += "<br>missing: " + reason
				}
			default:
				missing++
				perFile[a.file][2]++
				if reason == "" {
					t.Errorf("%s anchor %q (%s) has no rule whose covers: names it and no reason in %s", s.name, a.id, a.file, reasonsFile)
				}
				ours = reason
				if !strings.HasPrefix(reason, "not ") {
					ours = "not covered: " + reason
				}
			}
			id := cell(a.id)
			if onePerFile { // Sigma, Tracee: link the rule's own file
				id = "[" + id + "](" + sourceURL(l.snapshot, a.file) + ")"
			}
			if hasTitle {
				fmt.Fprintf(&rows, "| %s | %s | %s |\n", id, cell(a.title), cell(ours))
			} else {
				fmt.Fprintf(&rows, "| %s | %s |\n", id, cell(ours))
			}
		}
		for k := range setReasons {
			if !used[k] {
				t.Errorf("%s: %s: %q matches no anchor rule that needs a reason: remove it", reasonsFile, s.name, k)
			}
		}
		n := len(l.rules)
		fmt.Fprintf(&doc, "| [%s](#%s) | %s | %d | %d | %d | %d | %d%% |\n", s.title, anchorLink(s.title), shortSnapshot(l.snapshot), n, covered, partly, missing, (100*(covered+partly)+n/2)/n)
		fmt.Fprintf(&body, "\n## %s\n\n", s.title)
		fmt.Fprintf(&body, "%s, %s: %d rules, %d covered, %d partly, %d not covered.\n\n", files(l), l.snapshot, n, covered, partly, missing)
		if len(fileOrder) > 1 && !onePerFile { // CRS: a summary per file, i.e. per attack family
			body.WriteString("| file | covered | partly | not covered |\n| --- | ---: | ---: | ---: |\n")
			for _, f := range fileOrder {
				c := perFile[f]
				fmt.Fprintf(&body, "| %s | %d | %d | %d |\n", path.Base(f), c[0], c[1], c[2])
			}
			body.WriteString("\n")
		}
		body.WriteString(rows.String())
		t.Logf("%s: %d anchors, %d covered, %d partly, %d not covered", s.name, n, covered, partly, missing)
	}
	doc.WriteString(body.String())

	got := doc.String()
	if *update {
		require.NoError(t, os.WriteFile(coverageDoc, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(coverageDoc)
	require.NoError(t, err, "run `%s`", regenerate)
	assert.Equal(t, string(want), got, "docs/coverage.md is stale: run `%s` and commit it", regenerate)
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// files names the anchor files a set was read from, or their folders when many.
func files(l anchorList) string {
	seen := map[string]bool{}
	var fs []string
	for _, a := range l.rules {
		f := a.file
		if !seen[f] {
			seen[f] = true
			fs = append(fs, f)
		}
	}
	if len(fs) > 3 {
		dirs := map[string]bool{}
		fs = fs[:0]
		for f := range seen {
			d := path.Dir(f)
			for strings.Count(d, "/") > 3 {
				d = path.Dir(d)
			}
			if !dirs[d] {
				dirs[d] = true
				fs = append(fs, d+"/")
			}
		}
		sort.Strings(fs)
		if len(fs) == 1 {
			fs[0] += fmt.Sprintf(" (%d files)", len(seen))
		}
	}
	return "`" + strings.Join(fs, "`, `") + "`"
}

func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// anchorLink is GitHub's heading anchor for a title.
func anchorLink(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// shortSnapshot abbreviates repository@commit to 12 hex digits of the commit.
func shortSnapshot(s string) string {
	if repo, commit, ok := strings.Cut(s, "@"); ok && len(commit) > 12 {
		return repo + "@" + commit[:12]
	}
	return s
}

// TestCoverageReasonPatterns: an exact entry wins over patterns, a longer
// pattern over a shorter one, and file: patterns match the source file.
func TestCoverageReasonPatterns(t *testing.T) {
	reasons := map[string]string{
		"942*":                           "family",
		"9424??":                         "anomaly",
		"942100":                         "exact",
		"file:rules/web/proxy_generic/*": "proxy",
	}
	for _, tc := range []struct {
		a          anchorRule
		reason, by string
	}{
		{anchorRule{id: "942100"}, "exact", "942100"},
		{anchorRule{id: "942431"}, "anomaly", "9424??"},
		{anchorRule{id: "942200"}, "family", "942*"},
		{anchorRule{id: "941100"}, "", ""},
		{anchorRule{id: "b494b165", file: "rules/web/proxy_generic/proxy_telegram_api.yml"}, "proxy", "file:rules/web/proxy_generic/*"},
		{anchorRule{id: "65354b83", file: "rules/web/webserver_generic/web_xss_in_access_logs.yml"}, "", ""},
	} {
		reason, by := reasonFor(reasons, tc.a)
		assert.Equal(t, tc.reason, reason, tc.a.id)
		assert.Equal(t, tc.by, by, tc.a.id)
	}
}

// sourceURL links an anchor's file at the snapshot (github.com/owner/repo@commit).
func sourceURL(snapshot, file string) string {
	repo, commit, _ := strings.Cut(snapshot, "@")
	return "https://" + repo + "/blob/" + commit + "/" + file
}
