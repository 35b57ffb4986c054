package experiment

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// compareRow is one mode of the comparison's table.
type compareRow struct {
	mode  string
	m     *rundir.Metrics
	stage string
}

func (r *CompareResult) rows() []compareRow {
	return []compareRow{{"head-only (VGG16 frozen)", r.Head, stageHead}, {"block5 fine-tuned", r.FineTune, stageFineTune}}
}

// seconds is the recorded time of a stage, 0 when it never ran.
func (r *CompareResult) seconds(name string) float64 {
	return (&compareRecord{Stages: r.Stages}).seconds(name)
}

// WriteTable prints the comparison as an aligned text table, with the
// extraction's time below.
func (r *CompareResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\ttrain acc\tval acc (final)\tbest val acc (epoch)\ttraining time")
	for _, row := range r.rows() {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f (%d)\t%s\n", row.mode, row.m.Final.Accuracy, row.m.Final.ValAccuracy,
			row.m.Best.ValAccuracy, row.m.Best.Epoch, fsutil.FormatSeconds(r.seconds(row.stage)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "feature extraction (one pass, features and maps): %s\n", fsutil.FormatSeconds(r.seconds(stageExtract)))
	return err
}

// report reads the runs' metrics and histories and writes report.md and
// curves.png.
func (c *comparison) report() (*CompareResult, error) {
	out := c.s.Out
	r := &CompareResult{Stages: c.rec.Stages, Report: filepath.Join(out, compareReportFile), Curves: filepath.Join(out, compareCurvesFile)}
	headDir, ftDir := filepath.Join(out, compareHeadDir), filepath.Join(out, compareFTDir)
	var err error
	if r.Head, err = rundir.ReadMetrics(headDir); err != nil {
		return nil, err
	}
	if r.FineTune, err = rundir.ReadMetrics(ftDir); err != nil {
		return nil, err
	}
	headHistory, err := rundir.ReadHistory(filepath.Join(headDir, rundir.HistoryFile))
	if err != nil {
		return nil, err
	}
	ftHistory, err := rundir.ReadHistory(filepath.Join(ftDir, rundir.HistoryFile))
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFile(r.Report, []byte(c.markdown(r)), 0o644); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if err := rundir.PlotCurves(r.Curves, "head-only vs block5 fine-tuned: validation",
		rundir.Series{Name: "head-only", History: headHistory, ValidationOnly: true},
		rundir.Series{Name: "fine-tuned", History: ftHistory, ValidationOnly: true}); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return r, nil
}

// markdown renders report.md: the table, the stages' commands and every
// deviation from the tutorial.
func (c *comparison) markdown(r *CompareResult) string {
	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	w("# tlearn compare: head-only versus block5 fine-tuning\n\n")
	w("Model: `%s`. Input %d×%d. Generated %s.\n\n", c.s.Model, c.size, c.size, now().Format(time.RFC3339))
	w("| mode | train accuracy | val accuracy (final) | val loss (final) | best val accuracy | best epoch | epochs | training time |\n")
	w("|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.rows() {
		w("| %s | %.4f | %.4f | %.4f | %.4f | %d | %d | %s |\n", row.mode, row.m.Final.Accuracy, row.m.Final.ValAccuracy,
			row.m.Final.ValLoss, row.m.Best.ValAccuracy, row.m.Best.Epoch, row.m.EpochsRun, fsutil.FormatSeconds(r.seconds(row.stage)))
	}
	w("\nFeature extraction (one pass, pooled features and block4_pool maps): %s. ", fsutil.FormatSeconds(r.seconds(stageExtract)))
	w("Epochs are counted from 1, here and in history.csv. ")
	w("Train accuracy is measured during the last epoch, with dropout on, as Keras reports it.\n\n")
	w("For reference, the Keras tutorial (VGG16 with ImageNet weights, CIFAR-10, 10,000 train / 2,500 validation at 224×224) reports validation accuracy 0.692 head-only and 0.800 with block5 fine-tuned.\n\n")
	w("![validation curves](%s)\n\n", compareCurvesFile)
	w("## Stages\n\nEach stage is a tlearn command; run them by hand to reproduce this report.\n\n")
	for _, s := range r.Stages {
		note := ""
		if s.Reused {
			note = " (reused from an earlier run)"
		}
		w("- **%s** — %s%s:\n", s.Name, fsutil.FormatSeconds(s.Seconds), note)
		for _, line := range s.CommandLines() {
			w("  `%s`\n", line)
		}
	}
	w("\nRun folders: `%s/` and `%s/` (settings.json, weights.safetensors, history.csv, metrics.json, curves.png, confusion.png, classifier.onnx).\n\n", compareHeadDir, compareFTDir)
	w("## Where this differs from the tutorial\n\n")
	w("%s", c.deviations())
	return md.String()
}

// deviations lists, one markdown item each, where the settings differ
// from the Keras tutorial.
func (c *comparison) deviations() string {
	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	s := c.s
	if s.NoShuffle {
		w("- Batches are class-ordered (`--no-shuffle`), as the tutorial's generator with shuffle=False.\n")
	} else {
		w("- Batches are shuffled every epoch; the tutorial's generator uses shuffle=False, so its batches come class by class.\n")
	}
	if s.FineTuneEpochs != 50 {
		w("- Fine-tuning runs %d epochs instead of the tutorial's 50 (its curve plateaus by 10).\n", s.FineTuneEpochs)
	}
	if s.Epochs != 50 {
		w("- Head-only training runs %d epochs instead of 50.\n", s.Epochs)
	}
	if c.size != 224 {
		w("- Images are resized to %d×%d instead of 224×224.\n", c.size, c.size)
	}
	if s.LR != 1e-4 {
		w("- The learning rate is %g instead of 1e-4.\n", s.LR)
	}
	if s.Batch != 32 {
		w("- The batch size is %d instead of 32.\n", s.Batch)
	}
	w("- The frozen VGG16 runs once over the images and its outputs are cached; the tutorial recomputes it every epoch (the same numbers, as it uses no augmentation).\n")
	w("- Fine-tuning reads block4_pool maps stored as float16 (the tutorial computes them in float32 every step).\n")
	w("- Adam's ε = 1e-7 enters after the bias correction (Kingma & Ba, PyTorch); Keras adds it before, a negligible difference.\n")
	w("- Images are resized with nearest-neighbour interpolation, Keras' `load_img` default, by a Go resizer; JPEG decoding by Go's image/jpeg differs from libjpeg by a few levels per pixel.\n")
	return md.String()
}
