package main

import (
	"context"
	"errors"
	"fmt"
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
	code := run(os.Args)
	if err := ortlib.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "tlearn: %v\n", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// exitCoder lets an action pick its exit status (e.g. 2 for bad usage).
type exitCoder interface{ ExitCode() int }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, args); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "tlearn: interrupted; finished work is kept and the same command resumes it")
			return 130
		}
		fmt.Fprintf(os.Stderr, "tlearn: %v\n", withAdvice(err))
		var ec exitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "tlearn",
		Usage:   "image transfer learning with a frozen VGG16 under ONNX Runtime, in Go",
		Version: version,
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
