package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUsageErrors checks that mistakes on the command line exit 2 with one
// line on stderr naming the mistake, and write nothing on stdout (where
// urfave/cli would print the help, into the records).
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		desc string
		args []string
		want string
	}{
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
		{"unknown subcommand", []string{"models", "nosuch"}, `models: unknown command "nosuch"`},
		{"bare models", []string{"models"}, "models: missing command, one of info, prepare, quantize, synth, fetch (see"},
		{"bare cache", []string{"cache"}, "cache: missing command, one of info, merge (see"},
		{"missing required flags", []string{"extract", "--model", "m"}, "extract: missing --data, --cache"},
		{"bad int", []string{"train", "--epochs", "abc"}, `invalid value "abc" for flag --epochs`},
		{"unknown flag", []string{"train", "--bogus"}, "not defined: --bogus"},
		{"stray argument", []string{"doctor", "extra"}, `doctor: unexpected argument "extra"`},
		{"flag after the arguments", []string{"classify", "a.jpg", "--model", "c.onnx"}, "such as --model, are not read"},
		{"flag after the cache folder", []string{"cache", "info", "cache", "--verify"}, "put flags such as --verify before"},
		{"bad device", []string{"extract", "--model", "m", "--data", "d", "--cache", "c", "--device", "gpu"}, `--device (or $TLEARN_DEVICE): ortlib: unknown device "gpu"`},
		{"negative threads", []string{"extract", "--model", "m", "--data", "d", "--cache", "c", "--threads", "-1"}, "--threads (or $TLEARN_THREADS) must be 0 or more"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, stdout, stderr := runTlearn(t, tc.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, no stdout and one line with %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// The help of a command group is still there when asked for.
func TestGroupHelp(t *testing.T) {
	code, stdout, _ := runTlearn(t, "models", "--help")
	if code != 0 || !strings.Contains(stdout, "prepare") {
		t.Errorf("tlearn models --help: exit %d, stdout %q", code, stdout)
	}
}

// The CLI reaches ONNX Runtime and gonum only through tlearn's packages
// (ARCHITECTURE.md): it must not import them itself.
func TestNoDirectORTOrGonum(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/yalue/onnxruntime_go") || strings.HasPrefix(path, "gonum.org/") {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
