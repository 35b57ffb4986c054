package main

import (
	"fmt"
	"io"
	"strings"

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

// interpolationUsage is the --interpolation help of extract and classify;
// extract's default is dataset.DefaultInterpolation.
const interpolationUsage = "resize `FILTER`: bilinear, bicubic or lanczos3 (Pillow's, antialiased when shrinking), or nearest (Keras' load_img default)"

// commonFlags are accepted by every subcommand, so that
// `tlearn extract --device cpu` works (the app has no global flags: they go
// after the subcommand name).
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

// sessionOptions reads --device and --threads.
func sessionOptions(c *cli.Context) (ortlib.Options, error) {
	dev, err := ortlib.ParseDevice(c.String(flagDevice))
	if err != nil {
		return ortlib.Options{}, usageError{fmt.Errorf("--%s (or $TLEARN_DEVICE): %w", flagDevice, err)}
	}
	if c.Int(flagThreads) < 0 {
		return ortlib.Options{}, usageError{fmt.Errorf("--%s (or $TLEARN_THREADS) must be 0 or more, got %d", flagThreads, c.Int(flagThreads))}
	}
	return ortlib.Options{Device: dev, Threads: c.Int(flagThreads)}, nil
}

// stderr is where summaries and progress go: the app's ErrWriter (the
// process's stderr, or a test's buffer), io.Discard with --quiet.
func stderr(c *cli.Context) io.Writer {
	if c.Bool(flagQuiet) {
		return io.Discard
	}
	return c.App.ErrWriter
}

// usageError marks bad flags or arguments: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return 2 }

// guardUsage makes every usage mistake of cmds and their subcommands a
// usageError (exit 2, one line on stderr, nothing on stdout) instead of
// urfave/cli's help dump on stdout, where it would mix with records, and its
// exit 1 or 3: bad flag values, missing required flags, unknown subcommands
// and arguments to commands that take none. Go's flag parsing stops at the
// first argument, so flags written after it are arguments: the commands that
// take arguments reject or read those themselves.
func guardUsage(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			// Go's flag package names flags with one dash; tlearn's help uses two.
			msg := strings.NewReplacer("flag -", "flag --", ": -", ": --", "for -", "for --").Replace(err.Error())
			return usageError{fmt.Errorf("%s: %s (see %s --help)", cmdPath(c), msg, c.Command.HelpName)}
		}
		var required []string
		for _, f := range cmd.Flags {
			if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
				sf.Required = false // checked below, after the arguments
				required = append(required, sf.Name)
			}
		}
		if len(cmd.Subcommands) > 0 {
			guardUsage(cmd.Subcommands)
			if cmd.Action == nil {
				cmd.Action = func(c *cli.Context) error {
					if c.Args().Present() {
						return usageError{fmt.Errorf("%s: unknown command %q (see %s --help)", cmdPath(c), c.Args().First(), c.Command.HelpName)}
					}
					// A bare group is a mistake too: the help goes on stdout
					// only when asked for with --help.
					return usageError{fmt.Errorf("%s: missing command, one of %s (see %s --help)", cmdPath(c), strings.Join(subcommandNames(c.Command), ", "), c.Command.HelpName)}
				}
			}
			continue
		}
		takesArgs, before := cmd.ArgsUsage != "", cmd.Before
		cmd.Before = func(c *cli.Context) error {
			args := c.Args().Slice()
			if !takesArgs && len(args) > 0 {
				return usageError{fmt.Errorf("%s: unexpected argument %q: it takes only flags (see %s --help)", cmdPath(c), args[0], c.Command.HelpName)}
			}
			var missing []string
			for _, name := range required {
				if !c.IsSet(name) {
					missing = append(missing, "--"+name)
				}
			}
			if len(missing) > 0 {
				hint := ""
				for _, a := range args {
					if len(a) > 1 && strings.HasPrefix(a, "-") {
						hint = fmt.Sprintf("; flags after the arguments, such as %s, are not read: write them first", a)
						break
					}
				}
				return usageError{fmt.Errorf("%s: missing %s%s (see %s --help)", cmdPath(c), strings.Join(missing, ", "), hint, c.Command.HelpName)}
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
	return cmds
}

// subcommandNames lists the visible subcommands of cmd, without the
// "help" that urfave/cli adds.
func subcommandNames(cmd *cli.Command) []string {
	var names []string
	for _, sub := range cmd.Subcommands {
		if !sub.Hidden && sub.Name != "help" {
			names = append(names, sub.Name)
		}
	}
	return names
}

// cmdPath is the command's name as error messages start with ("models info"),
// run() adding the "tlearn: ".
func cmdPath(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}
