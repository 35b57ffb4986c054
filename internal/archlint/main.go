package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	rulesFile := flag.String("rules", "ARCHITECTURE.md", "the Markdown file with the ```imports block")
	dir := flag.String("C", ".", "the module's root folder")
	flag.Parse()
	if err := run(*rulesFile, *dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "archlint:", err)
		os.Exit(1)
	}
}

func run(rulesFile, dir string, out io.Writer) error {
	f, err := os.Open(rulesFile)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := parseRules(f)
	if err != nil {
		return fmt.Errorf("%s: %w", rulesFile, err)
	}
	module, pkgs, err := listPackages(dir)
	if err != nil {
		return err
	}
	problems := r.check(module, pkgs)
	for _, p := range problems {
		fmt.Fprintln(out, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d forbidden import(s); the rules are in %s", len(problems), rulesFile)
	}
	return nil
}

// rules is the parsed ```imports block.
type rules struct {
	allow    map[string][]string // tlearn package pattern -> patterns it may import
	order    []string            // the patterns of allow, in file order
	external map[string][]string // outside module -> patterns that may import it
}

// parseRules reads the first ```imports fenced block of a Markdown file.
func parseRules(r io.Reader) (*rules, error) {
	rs := &rules{allow: map[string][]string{}, external: map[string][]string{}}
	sc := bufio.NewScanner(r)
	in, seen, line := false, false, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		switch {
		case !in && text == "```imports":
			in, seen = true, true
			continue
		case in && text == "```":
			in = false
			continue
		case !in || text == "" || strings.HasPrefix(text, "#"):
			continue
		}
		key, deps, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want `PKG: DEP ...` or `!MODULE: PKG ...`, got %q", line, text)
		}
		key = strings.TrimSpace(key)
		list := strings.Fields(deps)
		if ext, ok := strings.CutPrefix(key, "!"); ok {
			rs.external[ext] = append(rs.external[ext], list...)
			continue
		}
		if _, dup := rs.allow[key]; dup {
			return nil, fmt.Errorf("line %d: a second rule for %s", line, key)
		}
		rs.allow[key] = list
		rs.order = append(rs.order, key)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !seen {
		return nil, errors.New("no ```imports block")
	}
	return rs, nil
}

// match reports whether the relative package path p matches pattern.
func match(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return pattern == p
}

// ruleFor returns the rule for p: its own, else the longest "/..."
// pattern that covers it.
func (rs *rules) ruleFor(p string) (string, bool) {
	if _, ok := rs.allow[p]; ok {
		return p, true
	}
	best, found := "", false
	for _, pat := range rs.order {
		if match(pat, p) && (!found || len(pat) > len(best)) {
			best, found = pat, true
		}
	}
	return best, found
}

// pkg is what archlint needs of `go list -json`.
type pkg struct {
	ImportPath string
	Imports    []string // of the package's non-test files
}

func listPackages(dir string) (module string, pkgs []pkg, err error) {
	cmd := exec.Command("go", "list", "-m")
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list -m: %w", err)
	}
	module = strings.TrimSpace(string(b))
	cmd = exec.Command("go", "list", "-json", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err = cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list ./...: %w: %s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return "", nil, fmt.Errorf("go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return module, pkgs, nil
}

func (rs *rules) check(module string, pkgs []pkg) []string {
	var problems []string
	rel := func(path string) (string, bool) {
		if path == module {
			return ".", true
		}
		return strings.CutPrefix(path, module+"/")
	}
	for _, p := range pkgs {
		self, _ := rel(p.ImportPath)
		pat, ok := rs.ruleFor(self)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no rule in the imports block (add one: which packages may it import?)", self))
			continue
		}
		allowed := rs.allow[pat]
		check := func(imports []string) {
			for _, imp := range imports {
				if dep, ok := rel(imp); ok {
					if dep == self {
						continue
					}
					if !slices.ContainsFunc(allowed, func(a string) bool { return match(a, dep) }) {
						problems = append(problems, fmt.Sprintf("%s imports %s: not allowed (rule %q)", self, dep, pat))
					}
					continue
				}
				for ext, who := range rs.external {
					if (imp == ext || strings.HasPrefix(imp, ext+"/")) &&
						!slices.ContainsFunc(who, func(a string) bool { return match(a, self) }) {
						problems = append(problems, fmt.Sprintf("%s imports %s: only %s may", self, imp, strings.Join(who, ", ")))
					}
				}
			}
		}
		check(p.Imports)
	}
	slices.Sort(problems)
	return slices.Compact(problems)
}
