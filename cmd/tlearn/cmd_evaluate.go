package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
)

const (
	flagEvalRun       = "run"
	flagEvalCache     = "cache"
	flagEvalTopK      = "top-k"
	flagEvalOut       = "out"
	flagEvalConfusion = "confusion"
)

func evaluateCommand() *cli.Command {
	return &cli.Command{
		Name:  "evaluate",
		Usage: "measure a trained run on a cache: accuracy, top-k, per-class precision/recall/F1, confusion matrix",
		Description: `Runs the head of a run directory (tlearn train) on every image of a feature
cache made with the same backbone, and prints accuracy, top-k accuracy, loss,
per-class precision, recall and F1 and the confusion matrix (rows: true class,
columns: predicted class). --out writes the same as JSON; --confusion draws the
matrix as a PNG (by default next to --out).

A fine-tuned run (tlearn finetune) is evaluated on the cache's block4_pool maps
instead: its block5 and head run as the evaluation graph that validated each
epoch, under ONNX Runtime (--device, --threads). Such a cache must have been
extracted with --maps.

The cache must come from the model the run was trained on (the sha256 of its
extractor.onnx is compared) and have the run's classes, in the same order.

Example:
   tlearn evaluate --run run-head --cache cache/val
   tlearn evaluate --run run-head --cache test.cache --top-k 3 --out test-report.json
   tlearn extract --model model --data test-images --cache test-maps --maps
   tlearn evaluate --run run-ft --cache test-maps --device cpu`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagEvalRun, Usage: "run `DIR` written by tlearn train or tlearn finetune", Required: true},
			&cli.StringFlag{Name: flagEvalCache, Usage: "cache `DIR` to evaluate on (with --maps for a fine-tuned run)", Required: true},
			&cli.IntFlag{Name: flagEvalTopK, Value: 5, Usage: "`K` of the top-k accuracy"},
			&cli.StringFlag{Name: flagEvalOut, Usage: "write the report as JSON to `FILE`"},
			&cli.StringFlag{Name: flagEvalConfusion, Usage: "draw the confusion matrix into `FILE.png` (default with --out: FILE.confusion.png)"},
			ttaFlag("evaluate"),
		),
		Action: onInterrupt("nothing was written; the same command evaluates again from the start", evaluateAction),
	}
}

func evaluateAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("evaluate takes no arguments (got %q)", c.Args().First())}
	}
	if c.Int(flagEvalTopK) < 1 {
		return usageError{fmt.Errorf("--%s must be at least 1", flagEvalTopK)}
	}
	if t := c.Int(flagThreads); t > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
	}
	runDir, cacheDir := c.String(flagEvalRun), c.String(flagEvalCache)
	out, png := c.String(flagEvalOut), c.String(flagEvalConfusion)
	if png == "" && out != "" {
		png = strings.TrimSuffix(out, filepath.Ext(out)) + ".confusion.png"
	}
	for _, o := range []struct{ flag, path string }{{flagEvalOut, out}, {flagEvalConfusion, png}} {
		if o.path == "" {
			continue
		}
		if err := experiment.CheckEvaluateOutput(o.path, experiment.EvaluateSettings{Run: runDir, Cache: cacheDir}); err != nil {
			return outputError(err, o.flag)
		}
	}
	for _, o := range []string{out, png} {
		if o == "" {
			continue
		}
		lock, err := fsutil.LockOutput(o)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		defer lock.Unlock()
		// Under the lock, a temporary of o can only be a killed run's.
		if _, err := lock.RemoveStale(); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	ew := stderr(c)
	p := newReporter(ew)
	defer p.Finish()
	rep, err := experiment.Evaluate(c.Context, experiment.EvaluateSettings{
		Run: runDir, Cache: cacheDir, TopK: c.Int(flagEvalTopK), TTA: c.Bool(flagTTA),
		// Only a fine-tuned run needs ONNX Runtime (and reads --device).
		Runtime: func() (ortlib.Options, error) {
			rt, err := sessionOptions(c)
			if err != nil {
				return rt, err
			}
			_, err = initORT(c)
			return rt, err
		},
	}, p)
	if err != nil {
		return evaluateAdvice(err)
	}
	if err := rep.WriteText(c.App.Writer); err != nil {
		return err
	}
	if out != "" {
		if err := rundir.WriteJSON(out, rep); err != nil {
			return err
		}
		fmt.Fprintf(ew, "wrote %s\n", out)
	}
	if png != "" {
		title := fmt.Sprintf("%s on %s", filepath.Base(runDir), filepath.Base(filepath.Clean(cacheDir)))
		if err := rundir.PlotConfusion(png, title, rep); err != nil {
			return err
		}
		fmt.Fprintf(ew, "wrote %s\n", png)
	}
	return nil
}

// evaluateAdvice adds to an Evaluate error the flag that gets past it
// (the library names none).
func evaluateAdvice(err error) error {
	switch {
	case errors.Is(err, rundir.ErrNotRun):
		return fmt.Errorf("%w (--%s takes a folder that tlearn train or tlearn finetune wrote)", err, flagEvalRun)
	case errors.As(err, new(*experiment.NoMapsError)):
		return withMapsAdvice(err)
	}
	return err
}
