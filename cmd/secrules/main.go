// Command secrules checks security rule files outside the collector, so that
// rule authors can test their rules in their own CI.
//
// Usage:
//
//	secrules validate [-strict] FILE_OR_PACK...
//	secrules test [-v] [-strict] -rules FILE_OR_PACK [-rules ...] [-events FILE]
//	secrules packs
//
// FILE_OR_PACK is a path, a glob (quoted, "rules/*.yaml"), or the name of a
// default pack embedded in the collector (secrules packs lists them). Files
// load in the order given, as the security_rules processor loads them, so a
// user file with overrides goes after the pack it overrides.
//
// validate loads and compiles the files. It prints one summary line and exits
// 0, or prints every error, each with its file and line, and exits 1.
// Warnings (a name the attribute vocabulary does not know, with the closest
// one it does) go to stderr as "warning: FILE:LINE: ..."; with -strict they
// are errors.
//
// test runs the rules' inline tests: it prints one line per failing case (every
// case with -v) and a summary line "N passed, M failed", and exits 1 if any case
// failed.
//
// test -events FILE replays events through the rules instead, as the
// processor would, and prints each alert as one JSON object per line on stdout:
//
//	{"rule":...,"severity":...,"output":...,"time":...,"attributes":{...}}
//
// The file (- for stdin) holds one event per line, in either form:
//
//	{"resourceLogs":[...]}   an OTLP/JSON logs export, as the collector's file exporter writes it
//	{"event_name":"k8s.audit","time":"2026-11-29T12:00:00Z","attributes":{...},"resource":{...}}
//
// time is RFC 3339 and optional (default: now). At the end of the input every
// throttling period is closed, so that counts of throttled matches are printed.
// A bad line is reported on stderr with its line number and skipped; the exit
// status is then 1.
//
// Exit status: 0 success, 1 rule errors, failing tests or bad event lines,
// 2 wrong usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
	packs "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"
)

const usage = `usage:
  secrules validate [-strict] FILE_OR_PACK...
  secrules test [-v] [-strict] -rules FILE_OR_PACK [-rules ...] [-events FILE]
  secrules packs

FILE_OR_PACK is a path, a glob or the name of an embedded default pack.
-strict   an attribute the vocabulary does not know is an error, not a warning.
validate  loads and compiles the files; prints every error with its file:line.
test      runs the rules' inline tests; with -events, replays the events of
          FILE (JSON lines: OTLP/JSON logs exports or
          {"event_name":..,"time":..,"attributes":{..},"resource":{..}})
          and prints each alert as a JSON line.
packs     lists the embedded default packs.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "test":
		return test(args[1:], stdout, stderr)
	case "packs":
		for _, name := range packs.PackNames() {
			fmt.Fprintln(stdout, name)
		}
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "secrules: unknown command %q\n%s", args[0], usage)
	return 2
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	strict := fs.Bool("strict", false, "an unknown attribute is an error, not a warning")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "secrules validate: no rule files\n%s", usage)
		return 2
	}
	srcs, err := sources(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "secrules: %v\n", err)
		return 1
	}
	if _, err := load(srcs, *strict, stderr); err != nil {
		return 1
	}
	parts := make([]string, len(srcs))
	for i, src := range srcs {
		parts[i] = src.Name + ": " + summarize(src.Data)
	}
	fmt.Fprintln(stdout, "ok: "+strings.Join(parts, "; "))
	return 0
}

// multiFlag is a flag that may be given more than once.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func test(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var ruleArgs multiFlag
	fs.Var(&ruleArgs, "rules", "a rule file, glob or pack (repeatable; in load order)")
	events := fs.String("events", "", "replay the events of this JSON lines file (- for stdin) instead of running inline tests")
	verbose := fs.Bool("v", false, "print every test case, not only the failing ones")
	strict := fs.Bool("strict", false, "an unknown attribute is an error, not a warning")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "secrules test: unexpected argument %q (rule files go in -rules)\n%s", fs.Arg(0), usage)
		return 2
	}
	if len(ruleArgs) == 0 {
		fmt.Fprintf(stderr, "secrules test: -rules is required\n%s", usage)
		return 2
	}
	srcs, err := sources(ruleArgs)
	if err != nil {
		fmt.Fprintf(stderr, "secrules: %v\n", err)
		return 1
	}
	set, err := load(srcs, *strict, stderr)
	if err != nil {
		return 1
	}
	if *events != "" {
		return replay(set, *events, stdout, stderr)
	}
	return inlineTests(set, *verbose, stdout)
}

func inlineTests(set *rules.Set, verbose bool, stdout io.Writer) int {
	passed, failed := 0, 0
	for _, res := range set.RunTests() {
		if res.Passed() {
			passed++
		} else {
			failed++
		}
		if verbose || !res.Passed() {
			fmt.Fprintln(stdout, res.String())
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// load compiles the sources, printing every error and warning on stderr.
func load(srcs []rules.Source, strict bool, stderr io.Writer) (*rules.Set, error) {
	set, err := rules.Load(srcs, rules.Options{StrictAttributes: strict})
	if set != nil {
		for _, w := range set.Warnings {
			fmt.Fprintln(stderr, "warning: "+w.String())
		}
	}
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
	}
	return set, err
}

// sources reads the named packs, files and globs, in order.
func sources(args []string) ([]rules.Source, error) {
	var out []rules.Source
	for _, arg := range args {
		if !strings.ContainsAny(arg, `/\`) && !strings.HasSuffix(arg, ".yaml") && !strings.HasSuffix(arg, ".yml") {
			if data, ok := packs.Pack(arg); ok {
				out = append(out, rules.Source{Name: arg, Data: data})
				continue
			}
		}
		paths := []string{arg}
		if strings.ContainsAny(arg, "*?[") {
			var err error
			if paths, err = filepath.Glob(arg); err != nil {
				return nil, fmt.Errorf("%s: %v", arg, err)
			} else if len(paths) == 0 {
				return nil, fmt.Errorf("%s: no file matches", arg)
			}
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(arg, `/\`) {
					return nil, fmt.Errorf("%v (default packs: %s)", err, strings.Join(packs.PackNames(), ", "))
				}
				return nil, err
			}
			out = append(out, rules.Source{Name: p, Data: data})
		}
	}
	return out, nil
}

// summarize counts the entries of a file that loaded: "2 rules, 1 list, 0 macros".
func summarize(data []byte) string {
	counts := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 {
		for _, n := range doc.Content[0].Content {
			if len(n.Content) > 0 {
				counts[n.Content[0].Value]++
			}
		}
	}
	s := plural(counts["rule"], "rule") + ", " + plural(counts["list"], "list") + ", " + plural(counts["macro"], "macro")
	if n := counts["override"]; n > 0 {
		s += ", " + plural(n, "override")
	}
	return s
}

func plural(n int, word string) string {
	if n != 1 {
		word += "s"
	}
	return fmt.Sprintf("%d %s", n, word)
}
