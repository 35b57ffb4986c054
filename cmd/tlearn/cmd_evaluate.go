package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/extractor/cache"
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
	info, err := readRunInfo(runDir)
	if err != nil {
		return err
	}
	fineTuned := info.Mode == rundir.ModeFineTune
	var rt ortlib.Options
	if fineTuned {
		if rt, err = sessionOptions(c); err != nil {
			return err
		}
	}
	w, err := rundir.LoadWeights(filepath.Join(runDir, rundir.WeightsFile))
	if err != nil {
		return err
	}
	cc, err := cache.Open(cacheDir)
	if err != nil {
		return err
	}
	defer cc.Close()
	if fineTuned && (len(cc.Manifest.MapsShape) != 3 || cc.Maps == nil) {
		return fmt.Errorf("evaluate: %s has no block4_pool maps: extract it with --maps", cacheDir)
	}
	if err := checkEvalCache(info, w, cc, fineTuned); err != nil {
		return err
	}
	ew := errWriter(c)
	if cc.Manifest.Fingerprint != info.TrainCache.Fingerprint {
		m := cc.Manifest
		fmt.Fprintf(ew, "note: %s was extracted with other settings than the training cache (size %d, interpolation %s); the same backbone makes the features comparable, but accuracy may differ\n",
			cacheDir, m.Size, m.Interpolation)
	}
	var rep *head.Report
	if fineTuned {
		if _, err := initORT(c); err != nil {
			return err
		}
		rep, err = finetune.Evaluate(c.Context, w, mapsData(cc), c.Int(flagEvalTopK), rt)
	} else {
		rep, err = head.Evaluate(w, cacheData(cc), c.Int(flagEvalTopK))
	}
	if err != nil {
		return fmt.Errorf("evaluate: %s on %s: %w", runDir, cacheDir, err)
	}
	if err := rep.WriteText(c.App.Writer); err != nil {
		return err
	}
	out := c.String(flagEvalOut)
	if out != "" {
		if err := rundir.WriteJSON(out, rep); err != nil {
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
		if err := rundir.PlotConfusion(png, title, rep); err != nil {
			return err
		}
		fmt.Fprintf(ew, "wrote %s\n", png)
	}
	return nil
}

// readRunInfo is rundir.ReadInfo of --run, with advice for a folder that
// is not a run directory.
func readRunInfo(dir string) (*rundir.Info, error) {
	info, err := rundir.ReadInfo(dir)
	if errors.Is(err, rundir.ErrNotRun) {
		return nil, fmt.Errorf("%w (--%s takes a folder that tlearn train or tlearn finetune wrote)", err, flagEvalRun)
	}
	return info, err
}

// checkEvalCache refuses a cache whose features (for a fine-tuned run:
// maps) the run cannot read: another backbone, another feature size or
// channel count, other classes.
func checkEvalCache(info *rundir.Info, w *head.Weights, cc *cache.Cache, fineTuned bool) error {
	m := cc.Manifest
	dim, what := m.FeatureDim, "features per image"
	if fineTuned {
		dim, what = m.MapsShape[0], "channels in its maps"
	}
	switch {
	case info.ModelSHA256 != "" && m.Model.ExtractorSHA256 != info.ModelSHA256:
		return fmt.Errorf("evaluate: %s was made with another backbone (extractor sha256 %s, the run was trained on %s from %s); extract it with that model",
			cc.Dir, shortSHA(m.Model.ExtractorSHA256), shortSHA(info.ModelSHA256), info.ModelDir)
	case dim != w.InputDim():
		return fmt.Errorf("evaluate: %s has %d %s, the head expects %d", cc.Dir, dim, what, w.InputDim())
	case len(m.Classes) != w.NumClasses():
		return fmt.Errorf("evaluate: %s has %d classes %v, the run has %d %v", cc.Dir, len(m.Classes), m.Classes, w.NumClasses(), w.Classes)
	case !slices.Equal(m.Classes, w.Classes):
		return fmt.Errorf("evaluate: %s has classes %v, the run was trained on %v (same names in the same order needed)", cc.Dir, m.Classes, w.Classes)
	}
	return nil
}

func cacheData(cc *cache.Cache) *head.Data {
	return &head.Data{X: cc.Features, Y: cc.Labels, Classes: cc.Manifest.Classes}
}

func mapsData(cc *cache.Cache) *finetune.MapsData {
	s := cc.Manifest.MapsShape
	return &finetune.MapsData{Maps: cc.Maps, Y: cc.Labels, Classes: cc.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}}
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
