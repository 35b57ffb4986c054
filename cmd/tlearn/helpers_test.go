package main

import (
	"io"

	"github.com/urfave/cli/v2"
)

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
