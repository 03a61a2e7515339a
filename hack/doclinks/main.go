// Command doclinks checks the relative links of the user documentation: every
// link in README.md, docs/*.md and rules/README.md (the rule format, which the
// docs link) that is not a URL must name a file or
// directory that exists, and a #fragment must name a heading of that file.
// It prints each broken link as file:line: link: why, and exits 1 if any.
//
//	go run ./hack/doclinks            # from the repository root
//	go run ./hack/doclinks -root DIR README.md docs/*.md
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	root := flag.String("root", ".", "repository root the files and their links are relative to")
	flag.Parse()
	files := flag.Args()
	if len(files) == 0 {
		var err error
		if files, err = UserDocs(*root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	problems, err := Check(*root, files)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%d broken links\n", len(problems))
		os.Exit(1)
	}
}

// UserDocs lists the documentation files checked by default, relative to root.
func UserDocs(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files := []string{"README.md", "rules/README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		files = append(files, rel)
	}
	return files, nil
}

// Problem is one broken link.
type Problem struct {
	File string
	Line int
	Link string
	Why  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Why) }

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpanRE = regexp.MustCompile("`[^`]*`")
	schemeRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// Check reads each file (relative to root) and returns its broken links.
func Check(root string, files []string) ([]Problem, error) {
	var problems []Problem
	anchors := map[string]map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		for i, line := range proseLines(string(text)) {
			for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if schemeRE.MatchString(target) {
					continue
				}
				if why := checkTarget(root, f, target, anchors); why != "" {
					problems = append(problems, Problem{File: f, Line: i + 1, Link: target, Why: why})
				}
			}
		}
	}
	return problems, nil
}

// checkTarget says why target, linked from file, is broken ("" if it is not).
func checkTarget(root, file, target string, anchors map[string]map[string]bool) string {
	path, frag, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), path)
		if strings.HasPrefix(filepath.ToSlash(dest), "../") {
			return "points outside the repository"
		}
		if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
			return "no such file or directory"
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	if anchors[dest] == nil {
		text, err := os.ReadFile(filepath.Join(root, dest))
		if err != nil {
			return err.Error()
		}
		anchors[dest] = headingAnchors(string(text))
	}
	if !anchors[dest][frag] {
		return fmt.Sprintf("%s has no heading #%s", dest, frag)
	}
	return ""
}

// proseLines returns the file's lines with those inside code fences blanked,
// so that line numbers stay the file's.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fence = !fence
			lines[i] = ""
			continue
		}
		if fence {
			lines[i] = ""
		}
	}
	return lines
}

var headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)

// headingAnchors returns the anchors GitHub gives the file's headings:
// lowercased, punctuation other than - and _ dropped, spaces as -, and a
// repeated anchor suffixed -1, -2, ...
func headingAnchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, l := range proseLines(text) {
		m := headingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := Slug(m[1])
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// Slug is GitHub's anchor for a heading's text.
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(codeSpanText(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// codeSpanText drops the backticks of code spans and the targets of links,
// which GitHub leaves out of an anchor.
func codeSpanText(s string) string {
	s = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(s, "$1")
	return strings.ReplaceAll(s, "`", "")
}
