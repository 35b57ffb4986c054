package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/models"
)

const (
	flagCompareModel          = "model"
	flagCompareTrainData      = "train-data"
	flagCompareValData        = "val-data"
	flagCompareVal            = "val"
	flagCompareSeed           = "seed"
	flagCompareOut            = "out"
	flagCompareSize           = "size"
	flagCompareEpochs         = "epochs"
	flagCompareFineTuneEpochs = "finetune-epochs"
	flagCompareBatch          = "batch"
	flagCompareLR             = "lr"
	flagCompareNoShuffle      = "no-shuffle"
	flagCompareForce          = "force"
)

// Files and folders inside a compare report folder.
const (
	compareReportFile = "report.md"
	compareCurvesFile = "curves.png"
	compareStagesFile = "stages.json"
	compareCacheDir   = "cache"
	compareHeadDir    = "head"
	compareFTDir      = "finetune"
	classifierFile    = "classifier.onnx"
)

// compareStageHook, when set (by tests), runs before each stage starts.
var compareStageHook func(stage string)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:  "compare",
		Usage: "run the reference experiment: head-only training versus block5 fine-tuning, in one command",
		Description: `Runs the Keras tutorial's whole experiment (VGG16 transfer learning, head-only
versus block5 fine-tuned) and writes a report:

  1. one extraction pass over the images: pooled features and block4_pool maps
     (REPORT/cache/train, REPORT/cache/val);
  2. head-only training of the dense head (REPORT/head);
  3. block5 + head fine-tuning from a fresh head (REPORT/finetune);
  4. export of both as ONNX classifiers (REPORT/*/classifier.onnx);
  5. REPORT/report.md (the table below, every stage's exact command and every
     deviation from the tutorial) and REPORT/curves.png (validation accuracy and
     loss per epoch of both modes).

Each stage is an ordinary tlearn command, listed in report.md so that any of them
can be rerun by hand. Re-running compare after an interruption reuses the
finished stages (an interrupted extraction or fine-tuning resumes where it
stopped); --force redoes everything.

Defaults follow the tutorial — Adam with one learning rate 1e-4 for all trainable
weights, batch 32, 50 head epochs — except for shuffled batches (the tutorial's
generator uses shuffle=False) and 10 fine-tuning epochs instead of 50 (its
curve plateaus by 10).

Example:
   tlearn compare --model model --train-data cifar/train --val-data cifar/test --out report
   tlearn compare --model model --train-data images --val 0.2 --size 32 --out report`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagCompareModel, Usage: "prepared VGG model `DIR` (tlearn models prepare)", Required: true},
			&cli.StringFlag{Name: flagCompareTrainData, Usage: "training images: class folders under `DIR`", Required: true},
			&cli.StringFlag{Name: flagCompareValData, Usage: "validation images: class folders under `DIR`"},
			&cli.Float64Flag{Name: flagCompareVal, Usage: "instead of --val-data: hold out this `FRACTION` of --train-data (stratified)"},
			&cli.Uint64Flag{Name: flagCompareSeed, Usage: "`SEED` of the split, initial weights, shuffling and dropout"},
			&cli.StringFlag{Name: flagCompareOut, Usage: "report `DIR`", Required: true},
			&cli.IntFlag{Name: flagCompareSize, Usage: "input side in pixels", DefaultText: "the model's, 224 for VGG16"},
			&cli.IntFlag{Name: flagCompareEpochs, Value: head.DefaultEpochs, Usage: "head-only training epochs"},
			&cli.IntFlag{Name: flagCompareFineTuneEpochs, Value: finetune.DefaultEpochs, Usage: "fine-tuning epochs"},
			&cli.IntFlag{Name: flagCompareBatch, Value: head.DefaultBatch, Usage: "mini-batch size of both modes"},
			&cli.Float64Flag{Name: flagCompareLR, Value: head.DefaultLR, Usage: "Adam's learning rate of both modes"},
			&cli.BoolFlag{Name: flagCompareNoShuffle, Usage: "class-ordered batches, as the tutorial's generator (shuffle=False)"},
			&cli.BoolFlag{Name: flagCompareForce, Usage: "redo every stage"},
		),
		Action: compareAction,
	}
}

// compareStage is one finished stage, as recorded in stages.json.
type compareStage struct {
	Name    string     `json:"name"`
	Cmds    [][]string `json:"commands"` // tlearn command lines, without the common flags
	Seconds float64    `json:"seconds"`
	Done    time.Time  `json:"done"`
	Reused  bool       `json:"-"`
}

type compareRecord struct {
	Stages []compareStage `json:"stages"`
}

func (r *compareRecord) find(name string) *compareStage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}

func (r *compareRecord) put(s compareStage) {
	if old := r.find(s.Name); old != nil {
		*old = s
		return
	}
	r.Stages = append(r.Stages, s)
}

func sameCommands(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func compareAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("compare takes no arguments, got %q", c.Args().Slice())}
	}
	model, err := filepath.Abs(c.String(flagCompareModel))
	if err != nil {
		return err
	}
	spec, err := models.ReadSpec(model)
	if err != nil {
		return err
	}
	if spec.Maps == nil || spec.Block5 == nil {
		return usageError{fmt.Errorf("compare: %s is not a VGG-shaped model (preset %s): fine-tuning needs block5 and block4_pool maps", model, spec.Preset)}
	}
	valData, valFrac := c.String(flagCompareValData), c.Float64(flagCompareVal)
	switch {
	case valData == "" && valFrac == 0:
		return usageError{fmt.Errorf("compare: give --%s DIR or --%s FRACTION", flagCompareValData, flagCompareVal)}
	case valData != "" && valFrac != 0:
		return usageError{fmt.Errorf("compare: give --%s or --%s, not both", flagCompareValData, flagCompareVal)}
	case valFrac < 0 || valFrac >= 1:
		return usageError{fmt.Errorf("compare: --%s %v: want a fraction between 0 and 1", flagCompareVal, valFrac)}
	}
	for _, f := range []string{flagCompareEpochs, flagCompareFineTuneEpochs, flagCompareBatch} {
		if c.Int(f) <= 0 {
			return usageError{fmt.Errorf("compare: --%s must be positive, got %d", f, c.Int(f))}
		}
	}
	if !(c.Float64(flagCompareLR) > 0) {
		return usageError{fmt.Errorf("compare: --%s must be positive", flagCompareLR)}
	}
	size := c.Int(flagCompareSize)
	if size == 0 {
		size = spec.DefaultSize
	}
	out, err := filepath.Abs(c.String(flagCompareOut))
	if err != nil {
		return err
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("compare: --%s %s is a file, not a folder", flagCompareOut, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	force := c.Bool(flagCompareForce)
	rec := &compareRecord{}
	if !force {
		if err := readJSONFile(filepath.Join(out, compareStagesFile), rec); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("compare: %w (remove it or use --force)", err)
		}
	}
	log := stderr(c)

	seed := strconv.FormatUint(c.Uint64(flagCompareSeed), 10)
	trainData, err := filepath.Abs(c.String(flagCompareTrainData))
	if err != nil {
		return err
	}
	cacheDir := filepath.Join(out, compareCacheDir)
	trainCache, valCache := filepath.Join(cacheDir, "train"), filepath.Join(cacheDir, "val")
	sizeArg := strconv.Itoa(size)
	var extracts [][]string
	if valData != "" {
		valAbs, err := filepath.Abs(valData)
		if err != nil {
			return err
		}
		extracts = [][]string{
			{"extract", "--model", model, "--data", trainData, "--cache", trainCache, "--maps", "--size", sizeArg},
			{"extract", "--model", model, "--data", valAbs, "--cache", valCache, "--maps", "--size", sizeArg},
		}
	} else {
		extracts = [][]string{{"extract", "--model", model, "--data", trainData, "--val", strconv.FormatFloat(valFrac, 'g', -1, 64),
			"--seed", seed, "--cache", cacheDir, "--maps", "--size", sizeArg}}
	}
	if force {
		for i := range extracts {
			extracts[i] = append(extracts[i], "--force")
		}
	}
	common := []string{"--lr", strconv.FormatFloat(c.Float64(flagCompareLR), 'g', -1, 64),
		"--batch", strconv.Itoa(c.Int(flagCompareBatch)), "--seed", seed}
	if c.Bool(flagCompareNoShuffle) {
		common = append(common, "--no-shuffle")
	}
	headDir, ftDir := filepath.Join(out, compareHeadDir), filepath.Join(out, compareFTDir)
	train := append([]string{"train", "--train", trainCache, "--val", valCache, "--out", headDir, "--force",
		"--epochs", strconv.Itoa(c.Int(flagCompareEpochs))}, common...)
	finetune := append([]string{"finetune", "--model", model, "--train", trainCache, "--val", valCache, "--out", ftDir, "--force",
		"--epochs", strconv.Itoa(c.Int(flagCompareFineTuneEpochs))}, common...)
	exportHead := []string{"export", "--run", headDir, "--out", filepath.Join(headDir, classifierFile)}
	exportFT := []string{"export", "--run", ftDir, "--out", filepath.Join(ftDir, classifierFile)}

	stages := []struct {
		name   string
		cmds   [][]string
		output string   // a file that exists once the stage is done
		deps   []string // stages whose outputs it reads
	}{
		{"extract", extracts, filepath.Join(valCache, "manifest.json"), nil},
		{"head", [][]string{train}, filepath.Join(headDir, rundir.MetricsFile), []string{"extract"}},
		{"finetune", [][]string{finetune}, filepath.Join(ftDir, rundir.MetricsFile), []string{"extract"}},
		{"export-head", [][]string{exportHead}, filepath.Join(headDir, classifierFile), []string{"head"}},
		{"export-finetune", [][]string{exportFT}, filepath.Join(ftDir, classifierFile), []string{"finetune"}},
	}
	redone := map[string]bool{}
	for i, st := range stages {
		prev := rec.find(st.name)
		same := !force && prev != nil && sameCommands(prev.Cmds, st.cmds)
		depsRedone := slices.ContainsFunc(st.deps, func(d string) bool { return redone[d] })
		// The extraction always runs: it checks its caches against the images
		// and the model, and returns at once when they are up to date.
		if same && !depsRedone && st.name != "extract" && fileExists(st.output) {
			prev.Reused = true
			fmt.Fprintf(log, "compare: [%d/%d] %s: reusing the finished stage (%s)\n", i+1, len(stages), st.name, filepath.Dir(st.output))
			continue
		}
		if compareStageHook != nil {
			compareStageHook(st.name)
		}
		if err := c.Context.Err(); err != nil {
			return err
		}
		fmt.Fprintf(log, "compare: [%d/%d] %s\n", i+1, len(stages), st.name)
		t0 := time.Now()
		for _, args := range st.cmds {
			fmt.Fprintf(log, "  $ tlearn %s\n", shellJoin(args))
			if err := runSubcommand(c, args); err != nil {
				return fmt.Errorf("compare: stage %s: %w", st.name, err)
			}
		}
		done := compareStage{Name: st.name, Cmds: st.cmds, Seconds: time.Since(t0).Seconds(), Done: time.Now().UTC()}
		if same && st.name == "extract" {
			// The caches of an earlier finished pass were up to date (extract
			// refuses caches that no longer match): keep that pass's time.
			done.Seconds, done.Done, done.Reused = prev.Seconds, prev.Done, true
		} else {
			redone[st.name] = true
		}
		rec.put(done)
		if err := writeJSONFile(filepath.Join(out, compareStagesFile), rec); err != nil {
			return fmt.Errorf("compare: %w", err)
		}
	}
	rep, err := buildCompareReport(out, model, size, c, rec)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(out, compareReportFile), []byte(rep.markdown), 0o644); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if err := rundir.PlotCurves(filepath.Join(out, compareCurvesFile), "head-only vs block5 fine-tuned: validation",
		rundir.Series{Name: "head-only", History: rep.headHistory, ValidationOnly: true},
		rundir.Series{Name: "fine-tuned", History: rep.ftHistory, ValidationOnly: true}); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	fmt.Fprint(c.App.Writer, rep.table)
	fmt.Fprintf(log, "\ncompare: report %s, curves %s\n", filepath.Join(out, compareReportFile), filepath.Join(out, compareCurvesFile))
	return nil
}

// runSubcommand runs one tlearn subcommand in this process, with the common
// flags of the compare command passed on.
func runSubcommand(c *cli.Context, args []string) error {
	full := append([]string{"tlearn"}, args...)
	if v := c.String(flagORTLib); v != "" {
		full = append(full, "--"+flagORTLib, v)
	}
	full = append(full, "--"+flagDevice, c.String(flagDevice), "--"+flagThreads, strconv.Itoa(c.Int(flagThreads)))
	if c.Bool(flagQuiet) {
		full = append(full, "--"+flagQuiet)
	}
	app := newApp()
	app.Writer, app.ErrWriter = c.App.ErrWriter, c.App.ErrWriter // records of the stages are not compare's records
	return app.RunContext(c.Context, full)
}

type compareReport struct {
	markdown, table        string
	headHistory, ftHistory head.History
	headMetrics, ftMetrics *rundir.Metrics
}

// buildCompareReport reads the runs' metrics and histories and renders the
// table (for the terminal) and report.md.
func buildCompareReport(out, model string, size int, c *cli.Context, rec *compareRecord) (*compareReport, error) {
	r := &compareReport{}
	var err error
	headDir, ftDir := filepath.Join(out, compareHeadDir), filepath.Join(out, compareFTDir)
	if r.headMetrics, err = rundir.ReadMetrics(headDir); err != nil {
		return nil, err
	}
	if r.ftMetrics, err = rundir.ReadMetrics(ftDir); err != nil {
		return nil, err
	}
	if r.headHistory, err = rundir.ReadHistory(filepath.Join(headDir, rundir.HistoryFile)); err != nil {
		return nil, err
	}
	if r.ftHistory, err = rundir.ReadHistory(filepath.Join(ftDir, rundir.HistoryFile)); err != nil {
		return nil, err
	}
	seconds := func(name string) float64 {
		if s := rec.find(name); s != nil {
			return s.Seconds
		}
		return 0
	}
	rows := []struct {
		mode  string
		m     *rundir.Metrics
		stage string
	}{{"head-only (VGG16 frozen)", r.headMetrics, "head"}, {"block5 fine-tuned", r.ftMetrics, "finetune"}}

	var tb strings.Builder
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\ttrain acc\tval acc (final)\tbest val acc (epoch)\ttraining time")
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f (%d)\t%s\n", row.mode, row.m.Final.Accuracy, row.m.Final.ValAccuracy,
			row.m.Best.ValAccuracy, row.m.Best.Epoch, fmtSeconds(seconds(row.stage)))
	}
	tw.Flush()
	fmt.Fprintf(&tb, "feature extraction (one pass, features and maps): %s\n", fmtSeconds(seconds("extract")))
	r.table = tb.String()

	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	w("# tlearn compare: head-only versus block5 fine-tuning\n\n")
	w("Model: `%s`. Input %d×%d. Generated %s.\n\n", model, size, size, time.Now().UTC().Format(time.RFC3339))
	w("| mode | train accuracy | val accuracy (final) | val loss (final) | best val accuracy | best epoch | epochs | training time |\n")
	w("|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		w("| %s | %.4f | %.4f | %.4f | %.4f | %d | %d | %s |\n", row.mode, row.m.Final.Accuracy, row.m.Final.ValAccuracy,
			row.m.Final.ValLoss, row.m.Best.ValAccuracy, row.m.Best.Epoch, row.m.EpochsRun, fmtSeconds(seconds(row.stage)))
	}
	w("\nFeature extraction (one pass, pooled features and block4_pool maps): %s. ", fmtSeconds(seconds("extract")))
	w("Epochs are counted from 1, here and in history.csv. ")
	w("Train accuracy is measured during the last epoch, with dropout on, as Keras reports it.\n\n")
	w("For reference, the Keras tutorial (VGG16 with ImageNet weights, CIFAR-10, 10,000 train / 2,500 validation at 224×224) reports validation accuracy 0.692 head-only and 0.800 with block5 fine-tuned.\n\n")
	w("![validation curves](%s)\n\n", compareCurvesFile)
	w("## Stages\n\nEach stage is a tlearn command; run them by hand to reproduce this report.\n\n")
	for _, s := range rec.Stages {
		note := ""
		if s.Reused {
			note = " (reused from an earlier run)"
		}
		w("- **%s** — %s%s:\n", s.Name, fmtSeconds(s.Seconds), note)
		for _, args := range s.Cmds {
			w("  `tlearn %s`\n", shellJoin(args))
		}
	}
	w("\nRun folders: `%s/` and `%s/` (settings.json, weights.safetensors, history.csv, metrics.json, curves.png, confusion.png, classifier.onnx).\n\n", compareHeadDir, compareFTDir)
	w("## Where this differs from the tutorial\n\n")
	if c.Bool(flagCompareNoShuffle) {
		w("- Batches are class-ordered (`--no-shuffle`), as the tutorial's generator with shuffle=False.\n")
	} else {
		w("- Batches are shuffled every epoch; the tutorial's generator uses shuffle=False, so its batches come class by class.\n")
	}
	if fe := c.Int(flagCompareFineTuneEpochs); fe != 50 {
		w("- Fine-tuning runs %d epochs instead of the tutorial's 50 (its curve plateaus by 10).\n", fe)
	}
	if e := c.Int(flagCompareEpochs); e != 50 {
		w("- Head-only training runs %d epochs instead of 50.\n", e)
	}
	if size != 224 {
		w("- Images are resized to %d×%d instead of 224×224.\n", size, size)
	}
	if lr := c.Float64(flagCompareLR); lr != 1e-4 {
		w("- The learning rate is %g instead of 1e-4.\n", lr)
	}
	if b := c.Int(flagCompareBatch); b != 32 {
		w("- The batch size is %d instead of 32.\n", b)
	}
	w("- The frozen VGG16 runs once over the images and its outputs are cached; the tutorial recomputes it every epoch (the same numbers, as it uses no augmentation).\n")
	w("- Fine-tuning reads block4_pool maps stored as float16 (the tutorial computes them in float32 every step).\n")
	w("- Adam's ε = 1e-7 enters after the bias correction (Kingma & Ba, PyTorch); Keras adds it before, a negligible difference.\n")
	w("- Images are resized with nearest-neighbour interpolation, Keras' `load_img` default, by a Go resizer; JPEG decoding by Go's image/jpeg differs from libjpeg by a few levels per pixel.\n")
	r.markdown = md.String()
	return r, nil
}

func fmtSeconds(s float64) string {
	if s >= 90 {
		return (time.Duration(s) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%.1f s", s)
}

// shellJoin quotes args for copying into a shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	return fsutil.WriteWith(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
