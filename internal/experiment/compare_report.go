package experiment

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/models"
)

// compareRow is one mode of the comparison's table.
type compareRow struct {
	mode    string
	m       *rundir.Metrics
	history head.History
	stages  []string // the training stages whose times add up to its training time
}

// The rows' modes.
const (
	headMode         = "head-only (VGG16 frozen)"
	headInt8Mode     = "head-only, int8 features"
	fineTuneMode     = "block5 fine-tuned"
	fineTuneInt8Mode = "block5 fine-tuned, int8 maps"
	bestMode         = "tlearn best (recommended recipe)"
)

// rows are the table's rows: each int8 row after its float32 twin.
func (r *CompareResult) rows() []compareRow {
	rows := []compareRow{{headMode, r.Head, r.histories[compareHeadDir], []string{stageHead}}}
	if r.HeadInt8 != nil {
		rows = append(rows, compareRow{headInt8Mode, r.HeadInt8, r.histories[compareHeadInt8Dir], []string{stageHeadInt8}})
	}
	rows = append(rows, compareRow{fineTuneMode, r.FineTune, r.histories[compareFTDir], []string{stageFineTune}})
	if r.FineTuneInt8 != nil {
		rows = append(rows, compareRow{fineTuneInt8Mode, r.FineTuneInt8, r.histories[compareFTInt8Dir], []string{stageFTInt8}})
	}
	if r.Best != nil {
		rows = append(rows, compareRow{bestMode, r.Best, r.histories[compareFTBestDir], []string{stageHeadBest, stageFTBest}})
	}
	return rows
}

func (r *CompareResult) rowsByMode() map[string]compareRow {
	m := map[string]compareRow{}
	for _, row := range r.rows() {
		m[row.mode] = row
	}
	return m
}

// kept is the epoch whose weights the run kept (and the export holds):
// the last without --save-best, the selected one with it.
func (row compareRow) kept() head.Epoch {
	if e := row.m.WeightsEpoch; e >= 1 && e <= len(row.history) {
		return row.history[e-1]
	}
	return row.m.Final
}

// bestVal is the epoch of the highest validation accuracy: the run's best
// when it selected on the validation set, else looked up in its history
// (reported only: choosing it would have seen the validation images).
func (row compareRow) bestVal() head.Epoch {
	if !row.m.Best.HasHoldout || len(row.history) == 0 {
		return row.m.Best
	}
	best := row.history[0]
	for _, e := range row.history[1:] {
		if e.ValAccuracy > best.ValAccuracy {
			best = e
		}
	}
	return best
}

// seconds is the recorded time of stages, 0 for one that never ran.
func (r *CompareResult) seconds(names ...string) float64 {
	rec := &compareRecord{Stages: r.Stages}
	t := 0.0
	for _, n := range names {
		t += rec.seconds(n)
	}
	return t
}

// WriteTable prints the comparison as an aligned text table, with the
// extractions' and the best row's stage times below.
func (r *CompareResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\ttrain acc\tval acc (final)\tbest val acc (epoch)\tselected epoch\ttraining time")
	for _, row := range r.rows() {
		k, b := row.kept(), row.bestVal()
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f (%d)\t%d of %d\t%s\n", row.mode, k.Accuracy, k.ValAccuracy,
			b.ValAccuracy, b.Epoch, k.Epoch, row.m.EpochsRun, fsutil.FormatSeconds(r.seconds(row.stages...)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Speeds come with the int8 rows, which set them side by side; the
	// float32-only line stays as it was.
	if r.HeadInt8 != nil {
		fmt.Fprintf(w, "feature extraction (one pass, features and maps): %s\n%s\n", formatPass(r.Extraction), r.int8Line())
	} else {
		fmt.Fprintf(w, "feature extraction (one pass, features and maps): %s\n", fsutil.FormatSeconds(r.seconds(stageExtract)))
	}
	if r.Best != nil {
		fmt.Fprintf(w, "tlearn best: %s\n", r.bestTimes())
	}
	return nil
}

// bestTimes says what the "tlearn best" row's stages took: its extraction,
// its head-only stage when the recipe has one, its fine-tuning.
func (r *CompareResult) bestTimes() string {
	rec := &compareRecord{Stages: r.Stages}
	ext, ft := fsutil.FormatSeconds(r.seconds(stageExtractBest)), fsutil.FormatSeconds(r.seconds(stageFTBest))
	if rec.find(stageHeadBest) == nil {
		return fmt.Sprintf("extraction of its views %s, fine-tuning from a new head %s", ext, ft)
	}
	return fmt.Sprintf("extraction of its views %s, head %s, fine-tuning from that head %s", ext, fsutil.FormatSeconds(r.seconds(stageHeadBest)), ft)
}

// report reads the runs' metrics and histories and writes report.md and
// curves.png.
func (c *comparison) report() (*CompareResult, error) {
	out := c.s.Out
	r := &CompareResult{Report: filepath.Join(out, compareReportFile), Curves: filepath.Join(out, compareCurvesFile)}
	for _, st := range c.rec.Stages {
		// A --no-best call keeps an earlier call's best stages in
		// stages.json, for the next call, but not in its report; so does a
		// call without --int8 with the int8 stages.
		if (!c.s.NoBest || !isBestStage(st.Name)) && (c.s.Int8 || !isInt8Stage(st.Name)) {
			r.Stages = append(r.Stages, st)
		}
	}
	type runRef struct {
		dir string
		m   **rundir.Metrics
	}
	runs := []runRef{{compareHeadDir, &r.Head}, {compareFTDir, &r.FineTune}}
	if c.s.Int8 {
		runs = append(runs, runRef{compareHeadInt8Dir, &r.HeadInt8}, runRef{compareFTInt8Dir, &r.FineTuneInt8})
	}
	if !c.s.NoBest {
		runs = append(runs, runRef{compareFTBestDir, &r.Best})
	}
	r.histories = map[string]head.History{}
	for _, run := range runs {
		dir := filepath.Join(out, run.dir)
		m, err := rundir.ReadMetrics(dir)
		if err != nil {
			return nil, err
		}
		h, err := rundir.ReadHistory(filepath.Join(dir, rundir.HistoryFile))
		if err != nil {
			return nil, err
		}
		*run.m = m
		r.histories[run.dir] = h
	}
	r.Extraction = r.extractionPass(stageExtract, filepath.Join(out, compareCacheDir))
	if c.s.Int8 {
		r.ExtractionInt8 = r.extractionPass(stageExtractInt8, filepath.Join(out, compareCacheInt8Dir))
		spec, err := models.ReadSpec(c.int8Model())
		if err != nil {
			return nil, err
		}
		r.Quantization, r.QuantizeSeconds = spec.Quantization, r.seconds(stageQuantize)
	}
	if err := fsutil.WriteFile(r.Report, []byte(c.markdown(r)), 0o644); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	series := []rundir.Series{
		{Name: "head-only", History: r.histories[compareHeadDir], ValidationOnly: true},
		{Name: "fine-tuned", History: r.histories[compareFTDir], ValidationOnly: true},
	}
	title := "head-only vs block5 fine-tuned"
	if r.HeadInt8 != nil {
		series = append(series,
			rundir.Series{Name: "head-only int8", History: r.histories[compareHeadInt8Dir], ValidationOnly: true},
			rundir.Series{Name: "fine-tuned int8", History: r.histories[compareFTInt8Dir], ValidationOnly: true})
		title += " (float32 and int8)"
	}
	if r.Best != nil {
		series = append(series, rundir.Series{Name: "tlearn best (fine-tuning)", History: r.histories[compareFTBestDir], ValidationOnly: true})
		title += " vs tlearn best"
	}
	title += ": validation"
	if err := rundir.PlotCurves(r.Curves, title, series...); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return r, nil
}

func isBestStage(name string) bool {
	switch name {
	case stageExtractBest, stageHeadBest, stageFTBest, stageExportBest:
		return true
	}
	return false
}

// markdown renders report.md: the table, the stages' commands and every
// deviation from the tutorial.
func (c *comparison) markdown(r *CompareResult) string {
	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	title := "head-only versus block5 fine-tuning"
	if r.HeadInt8 != nil {
		title += ", float32 and int8"
	}
	if r.Best != nil {
		title += ", and tlearn's recommended recipe"
	}
	w("# tlearn compare: %s\n\n", title)
	w("Model: `%s`. Input %d×%d. Generated %s.\n\n", c.s.Model, c.size, c.size, now().Format(time.RFC3339))
	w("| mode | train accuracy | val accuracy (final) | val loss (final) | best val accuracy | best epoch | selected epoch | epochs | training time |\n")
	w("|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.rows() {
		k, b := row.kept(), row.bestVal()
		w("| %s | %.4f | %.4f | %.4f | %.4f | %d | %d | %d | %s |\n", row.mode, k.Accuracy, k.ValAccuracy,
			k.ValLoss, b.ValAccuracy, b.Epoch, k.Epoch, row.m.EpochsRun, fsutil.FormatSeconds(r.seconds(row.stages...)))
	}
	w("\nThe selected epoch is the one whose weights the run kept and exported, and \"final\" columns are that epoch's: ")
	w("the last epoch for the tutorial's rows (Keras' fit keeps the last)")
	if r.Best != nil {
		if c.recipe().FineTuneLastEpoch {
			w(", and for tlearn best too, where the learning-rate schedule ends (its best val accuracy is reported only: choosing on it would have seen the validation images)")
		} else {
			w(", the epoch chosen on the holdout for tlearn best (its best val accuracy is reported only: choosing on it would have seen the validation images)")
		}
	}
	if r.HeadInt8 != nil {
		w(". Feature extraction (one pass, pooled features and block4_pool maps): %s; with the int8 model: %s", formatPass(r.Extraction), formatPass(r.ExtractionInt8))
	} else {
		w(". Feature extraction (one pass, pooled features and block4_pool maps): %s", fsutil.FormatSeconds(r.seconds(stageExtract)))
	}
	if r.Best != nil {
		w("; tlearn best: %s", r.bestTimes())
	}
	w(". Epochs are counted from 1, here and in history.csv. ")
	w("Train accuracy is measured during the epoch, with dropout on, as Keras reports it.\n\n")
	w("For reference, the Keras tutorial (VGG16 with ImageNet weights, CIFAR-10, 10,000 train / 2,500 validation at 224×224) reports validation accuracy 0.692 head-only and 0.800 with block5 fine-tuned.\n\n")
	w("![validation curves](%s)\n\n", compareCurvesFile)
	if r.HeadInt8 != nil {
		w("%s", c.int8Notes(r))
	}
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
	dirs := []string{compareHeadDir, compareFTDir}
	if r.HeadInt8 != nil {
		dirs = append(dirs, compareHeadInt8Dir, compareFTInt8Dir)
	}
	if r.Best != nil {
		dirs = append(dirs, compareHeadBestDir, compareFTBestDir)
	}
	for i := range dirs {
		dirs[i] = "`" + dirs[i] + "/`"
	}
	folders := strings.Join(dirs[:len(dirs)-1], ", ") + " and " + dirs[len(dirs)-1]
	if r.Best != nil {
		w("\nRun folders: %s (settings.json, weights.safetensors, history.csv, metrics.json, curves.png, confusion.png; classifier.onnx but in %s/).\n\n",
			folders, compareHeadBestDir)
		w("## tlearn best\n\n%s\n", c.bestNotes())
	} else {
		w("\nRun folders: %s (settings.json, weights.safetensors, history.csv, metrics.json, curves.png, confusion.png, classifier.onnx).\n\n", folders)
	}
	w("## Where the tutorial's rows differ from the tutorial\n\n")
	w("%s", c.deviations())
	return md.String()
}

// bestNotes describes the "tlearn best" row, one markdown item each.
func (c *comparison) bestNotes() string {
	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	r := c.recipe()
	w("The recommended recipe (`experiment.Recommended`), on the same images, epochs, batch size and seed as the tutorial's rows:\n\n")
	w("- Its own extraction (`%s/`): %s resizing", compareBestCacheDir, r.Interpolation)
	if r.Views > 1 {
		w(", %d views per image (view 0 plain, views 1..%d augmented with `%s`, seeded by the comparison's seed)", r.Views, r.Views-1, r.Augment)
	}
	w(".\n")
	sel := "keep the last epoch's weights"
	if r.SaveBest {
		sel = "keep the weights of the epoch with the highest holdout accuracy"
	}
	sched := ""
	if r.FineTuneSchedule != head.ScheduleConstant {
		sched = fmt.Sprintf(", both annealed along a %s (`--lr-schedule %s`)", r.FineTuneSchedule, r.FineTuneSchedule)
	}
	if r.FreshHead {
		if r.FineTuneLastEpoch {
			w("- It trains on every training image (no holdout) and keeps the last epoch, where the schedule ends; the validation images only report.\n")
		} else {
			w("- It sets aside %g of the training images per class (`--holdout`) and %s; the validation images only report.\n", r.Holdout, sel)
		}
		w("- block5 is fine-tuned with a new head (`%s/`), the head at %g and block5 at %g%s; batches are shuffled.\n",
			compareFTBestDir, r.FineTuneLR, r.Block5LR, sched)
	} else {
		w("- Both stages set aside %g of the training images per class (`--holdout`; the same images in both, which the head never trained on) and %s; the validation images only report.\n", r.Holdout, sel)
		w("- The head trains with Adam at %g (`%s/`); block5 is then fine-tuned from that head (`--init-head`) with the head at %g and block5 at %g%s (`%s/`); batches are shuffled.\n",
			r.HeadLR, compareHeadBestDir, r.FineTuneLR, r.Block5LR, sched, compareFTBestDir)
	}
	if r.TTA {
		w("- Validation and holdout accuracies average the probabilities of an image's %d views (`--tta`). Test-time augmentation affects evaluation only: the exported `%s/%s` is the plain model, one view per image; `tlearn evaluate --run %s --cache %s` without `--tta` measures it on the plain validation images.\n",
			r.Views, compareFTBestDir, classifierFile, filepath.Join(c.s.Out, compareFTBestDir), filepath.Join(c.s.Out, compareBestCacheDir, "val"))
	}
	w("- Its classifier, `%s/%s`, holds the fine-tuned run's selected epoch and records %s resizing.\n", compareFTBestDir, classifierFile, r.Interpolation)
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
