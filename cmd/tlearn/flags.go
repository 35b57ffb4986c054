package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// Flag names shared by several subcommands.
const (
	flagORTLib  = "ort-lib"
	flagDevice  = "device"
	flagThreads = "threads"
	flagQuiet   = "quiet"
)

// commonFlags are accepted by every subcommand, so that
// `tlearn extract --device cpu` works as well as `tlearn --device cpu extract`.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagORTLib, Usage: "path of libonnxruntime.so (default: $" + ortlib.EnvLibrary + ", then the checkout's .ort/lib, then system paths)", EnvVars: []string{"TLEARN_ORT_LIB"}},
		&cli.StringFlag{Name: flagDevice, Value: "auto", Usage: "where ONNX Runtime runs: auto (CUDA when available, else CPU), cpu or cuda", EnvVars: []string{"TLEARN_DEVICE"}},
		&cli.IntFlag{Name: flagThreads, Usage: "compute threads (0 = one per core)", EnvVars: []string{"TLEARN_THREADS"}},
		&cli.BoolFlag{Name: flagQuiet, Aliases: []string{"q"}, Usage: "no progress or summaries on stderr", EnvVars: []string{"TLEARN_QUIET"}},
	}
}

// withCommon appends the common flags to a subcommand's own.
func withCommon(flags ...cli.Flag) []cli.Flag { return append(flags, commonFlags()...) }

// initORT loads the ONNX Runtime library once per process.
func initORT(c *cli.Context) (ortlib.Candidate, error) {
	return ortlib.Init(c.String(flagORTLib))
}

func closeORT() {} // the process exit releases the environment; sessions are closed by their owners

// sessionOptions reads --device and --threads.
func sessionOptions(c *cli.Context) (ortlib.Options, error) {
	dev, err := ortlib.ParseDevice(c.String(flagDevice))
	if err != nil {
		return ortlib.Options{}, usageError{err}
	}
	if c.Int(flagThreads) < 0 {
		return ortlib.Options{}, usageError{fmt.Errorf("--%s must be 0 or more, got %d", flagThreads, c.Int(flagThreads))}
	}
	return ortlib.Options{Device: dev, Threads: c.Int(flagThreads)}, nil
}

// stderr is where summaries and progress go; io.Discard with --quiet.
func stderr(c *cli.Context) io.Writer {
	if c.Bool(flagQuiet) {
		return io.Discard
	}
	return os.Stderr
}

// usageError marks bad flags or arguments: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return 2 }
