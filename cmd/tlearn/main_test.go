package main

import (
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
