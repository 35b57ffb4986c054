package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// version is set by `make build` with -ldflags -X main.version=...
var version = "dev"

// main runs one command, then unloads ONNX Runtime if the command loaded it
// (run itself leaves it loaded, so that tests can call run many times).
func main() {
	code := run(os.Args, os.Stdout, os.Stderr)
	if err := ortlib.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "tlearn: %v\n", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// exitInterrupted is the exit status after Ctrl-C or SIGTERM: 128+SIGINT,
// as a shell reports a command that SIGINT stopped.
const exitInterrupted = 130

// interruptedError is the error of a command that Ctrl-C or SIGTERM
// stopped: kept says, in the command's own words, what the interrupted run
// left and whether the same command resumes it or starts again.
type interruptedError struct {
	kept string
	err  error
}

func (e interruptedError) Error() string { return e.err.Error() + " (" + e.kept + ")" }
func (e interruptedError) Unwrap() error { return e.err }

// onInterrupt wraps a command's action so that an interrupt's error
// carries kept, the command's sentence about what it kept.
func onInterrupt(kept string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		// A command that knows more precisely what it left (data's
		// marked-incomplete output) has said so already.
		if err != nil && errors.Is(err, context.Canceled) && !errors.As(err, new(interruptedError)) {
			return interruptedError{kept, err}
		}
		return err
	}
}

// exitCoder lets an action pick its exit status (e.g. 2 for bad usage).
type exitCoder interface{ ExitCode() int }

// run runs the command line args with records and help on stdout and
// errors, summaries and progress on stderr, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runApp(ctx, newApp(stdout, stderr), args)
}

// runApp runs app on args, prints its error with the advice on the app's
// ErrWriter and returns the exit status.
func runApp(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		// Only the command knows what it kept; a command without its own
		// sentence promises nothing.
		msg := "tlearn: interrupted"
		var ie interruptedError
		if errors.As(err, &ie) {
			msg += "; " + ie.kept
		}
		fmt.Fprintln(app.ErrWriter, msg)
		return exitInterrupted
	}
	fmt.Fprintf(app.ErrWriter, "tlearn: %v\n", withAdvice(err))
	var ec exitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "tlearn",
		Usage:     "image transfer learning with a frozen VGG16 under ONNX Runtime, in Go",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Description: `tlearn reuses a pretrained CNN to train an image classifier from few labelled images:

   tlearn models prepare --onnx vgg16.onnx --out model     # cut the backbone once
   tlearn extract --model model --data images --val 0.2 --cache cache --maps
   tlearn train --train cache/train --val cache/val --out run-head
   tlearn finetune --model model --train cache/train --val cache/val --out run-ft
   tlearn export --run run-ft --out classifier.onnx
   tlearn classify --model classifier.onnx photos/

Global settings (--ort-lib, --device, --threads, --quiet) are accepted by every
subcommand and read from the environment too (see each command's --help).`,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		Commands:             guardUsage(commands()),
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("unknown command %q (see tlearn --help)", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run() prints and picks the exit code
	}
}

// commands lists every subcommand; each lives in its own cmd_*.go file.
func commands() []*cli.Command {
	return []*cli.Command{
		doctorCommand(),
		modelsCommand(),
		dataCommand(),
		extractCommand(),
		cacheCommand(),
		trainCommand(),
		evaluateCommand(),
		finetuneCommand(),
		exportCommand(),
		classifyCommand(),
		compareCommand(),
	}
}

// initORT loads ONNX Runtime for the commands that run models, the first
// time one asks: it is the one place where cmd/tlearn initializes the
// library (with --ort-lib, which every command accepts); later calls
// return the first call's result, and main unloads it after the command.
// Libraries receive the loaded runtime; they never initialize it.
func initORT(c *cli.Context) (ortlib.Candidate, error) {
	return ortlib.Init(c.String(flagORTLib))
}
