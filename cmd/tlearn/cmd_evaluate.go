package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/cache"
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
		Usage: "measure a trained head on a feature cache: accuracy, top-k, per-class precision/recall/F1, confusion matrix",
		Description: `Runs the head of a run directory (tlearn train) on every image of a feature
cache made with the same backbone, and prints accuracy, top-k accuracy, loss,
per-class precision, recall and F1 and the confusion matrix (rows: true class,
columns: predicted class). --out writes the same as JSON; --confusion draws the
matrix as a PNG (by default next to --out).

The cache must come from the model the run was trained on (the sha256 of its
extractor.onnx is compared) and have the run's classes, in the same order.

Example:
   tlearn evaluate --run run-head --cache cache/val
   tlearn evaluate --run run-head --cache test.cache --top-k 3 --out test-report.json`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagEvalRun, Usage: "run `DIR` written by tlearn train", Required: true},
			&cli.StringFlag{Name: flagEvalCache, Usage: "feature cache `DIR` to evaluate on", Required: true},
			&cli.IntFlag{Name: flagEvalTopK, Value: 5, Usage: "`K` of the top-k accuracy"},
			&cli.StringFlag{Name: flagEvalOut, Usage: "write the report as JSON to `FILE`"},
			&cli.StringFlag{Name: flagEvalConfusion, Usage: "draw the confusion matrix into `FILE.png` (default with --out: FILE.confusion.png)"},
		),
		Action: evaluateAction,
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
	info, err := head.ReadRunInfo(runDir)
	if err != nil {
		return err
	}
	if info.Mode != head.ModeHead {
		return fmt.Errorf("evaluate: %s is a %s run; its weights need the block5 maps, so evaluate it with `tlearn export` and `tlearn classify`", runDir, info.Mode)
	}
	w, err := head.LoadWeights(filepath.Join(runDir, head.WeightsFile))
	if err != nil {
		return err
	}
	cc, err := cache.Open(cacheDir)
	if err != nil {
		return err
	}
	defer cc.Close()
	if err := checkEvalCache(info, w, cc); err != nil {
		return err
	}
	ew := errWriter(c)
	if cc.Manifest.Fingerprint != info.TrainCache.Fingerprint {
		m := cc.Manifest
		fmt.Fprintf(ew, "note: %s was extracted with other settings than the training cache (size %d, interpolation %s); the same backbone makes the features comparable, but accuracy may differ\n",
			cacheDir, m.Size, m.Interpolation)
	}
	rep, err := head.Evaluate(w, cacheData(cc), c.Int(flagEvalTopK))
	if err != nil {
		return fmt.Errorf("evaluate: %s on %s: %w", runDir, cacheDir, err)
	}
	if err := rep.WriteText(c.App.Writer); err != nil {
		return err
	}
	out := c.String(flagEvalOut)
	if out != "" {
		if err := head.WriteJSON(out, rep); err != nil {
			return err
		}
		fmt.Fprintf(ew, "wrote %s\n", out)
	}
	png := c.String(flagEvalConfusion)
	if png == "" && out != "" {
		png = strings.TrimSuffix(out, filepath.Ext(out)) + ".confusion.png"
	}
	if png != "" {
		title := fmt.Sprintf("%s on %s", filepath.Base(runDir), filepath.Base(filepath.Clean(cacheDir)))
		if err := head.PlotConfusion(png, title, rep); err != nil {
			return err
		}
		fmt.Fprintf(ew, "wrote %s\n", png)
	}
	return nil
}

// checkEvalCache refuses a cache whose features the head cannot read:
// another backbone, another feature size, other classes.
func checkEvalCache(info *head.RunInfo, w *head.Weights, cc *cache.Cache) error {
	m := cc.Manifest
	switch {
	case info.ModelSHA256 != "" && m.Model.ExtractorSHA256 != info.ModelSHA256:
		return fmt.Errorf("evaluate: %s was made with another backbone (extractor sha256 %s, the run was trained on %s from %s); extract it with that model",
			cc.Dir, shortSHA(m.Model.ExtractorSHA256), shortSHA(info.ModelSHA256), info.ModelDir)
	case m.FeatureDim != w.InputDim():
		return fmt.Errorf("evaluate: %s has %d features per image, the head expects %d", cc.Dir, m.FeatureDim, w.InputDim())
	case len(m.Classes) != w.NumClasses():
		return fmt.Errorf("evaluate: %s has %d classes %v, the run has %d %v", cc.Dir, len(m.Classes), m.Classes, w.NumClasses(), w.Classes)
	case !slices.Equal(m.Classes, w.Classes):
		return fmt.Errorf("evaluate: %s has classes %v, the run was trained on %v (same names in the same order needed)", cc.Dir, m.Classes, w.Classes)
	}
	return nil
}
