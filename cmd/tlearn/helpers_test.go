package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/urfave/cli/v2"
)

// The tests that run a cli.App (runTlearn, appWith) do not call
// t.Parallel: they no longer share os.Stdout and os.Stderr, but urfave/cli
// v2 writes to its own package variables on every Run (HelpFlag's Apply,
// the help command's fields), which the race detector reports when two
// apps run at once (TestTrainSweep and TestTrainInterrupted did). Nor
// would the tests that pass --threads to train, evaluate or compare, which
// sets GOMAXPROCS for the whole process.

// runTlearn runs the CLI as main does and returns its exit status and what
// it wrote to stdout and stderr.
func runTlearn(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = run(append([]string{"tlearn"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

// appWith is an app holding only cmds that writes to the given writers
// (stderr nil: to stdout) and leaves exit codes to the test.
func appWith(stdout, stderr io.Writer, cmds ...*cli.Command) *cli.App {
	if stderr == nil {
		stderr = stdout
	}
	return &cli.App{
		Name:           "tlearn",
		Writer:         stdout,
		ErrWriter:      stderr,
		Commands:       cmds,
		ExitErrHandler: func(*cli.Context, error) {},
	}
}
