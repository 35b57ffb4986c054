package main

import (
	"slices"
	"strings"
	"testing"
)

const block = "# Architecture\n\ntext\n\n```imports\n" + `
# comment
dataset: internal/fsutil
models: dataset internal/...
models/...: models dataset
head: internal/progress
cmd/tlearn: dataset models/... head
!github.com/yalue/onnxruntime_go: internal/ortlib models/fetch
` + "```\n"

func TestCheck(t *testing.T) {
	t.Parallel()
	rs, err := parseRules(strings.NewReader(block))
	if err != nil {
		t.Fatal(err)
	}
	m := "example.com/tl"
	pkgs := []pkg{
		{ImportPath: m + "/dataset", Imports: []string{"fmt", m + "/internal/fsutil"}},
		{ImportPath: m + "/models", Imports: []string{m + "/dataset", m + "/internal/ortlib"}},
		{ImportPath: m + "/models/fetch", Imports: []string{m + "/models", "github.com/yalue/onnxruntime_go"}},
		// Forbidden: head may not import models, nor ORT.
		{ImportPath: m + "/head", Imports: []string{m + "/models", "github.com/yalue/onnxruntime_go"}},
		{ImportPath: m + "/cmd/tlearn", Imports: []string{m + "/models/classifier", m + "/extractor"}},
		// No rule at all.
		{ImportPath: m + "/extractor"},
	}
	got := rs.check(m, pkgs)
	want := []string{
		`cmd/tlearn imports extractor: not allowed (rule "cmd/tlearn")`,
		"extractor: no rule in the imports block (add one: which packages may it import?)",
		"head imports github.com/yalue/onnxruntime_go: only internal/ortlib, models/fetch may",
		`head imports models: not allowed (rule "head")`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ desc, in, want string }{
		{"no block", "# nothing here\n", "no ```imports block"},
		{"no colon", "```imports\nhead models\n```\n", "line 2"},
		{"duplicate", "```imports\nhead: a\nhead: b\n```\n", "a second rule for head"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parseRules(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pat, p string
		want   bool
	}{
		{"models/...", "models", true},
		{"models/...", "models/fetch", true},
		{"models/...", "modelsx", false},
		{"models", "models/fetch", false},
		{"head", "head", true},
	} {
		if got := match(tc.pat, tc.p); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pat, tc.p, got)
		}
	}
}
