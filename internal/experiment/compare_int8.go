package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/quantize"
)

// The int8 rows' folders and stages (CompareSettings.Int8): the model
// quantized, the same images extracted with it, and the tutorial's two
// runs and exports on its features and maps.
const (
	compareModelInt8Dir = "model-int8"
	compareCacheInt8Dir = "cache-int8"
	compareHeadInt8Dir  = "head-int8"
	compareFTInt8Dir    = "finetune-int8"

	stageQuantize       = "quantize"
	stageExtractInt8    = "extract-int8"
	stageHeadInt8       = "head-int8"
	stageFTInt8         = "finetune-int8"
	stageExportHeadInt8 = "export-head-int8"
	stageExportFTInt8   = "export-finetune-int8"
)

func isInt8Stage(name string) bool {
	switch name {
	case stageQuantize, stageExtractInt8, stageHeadInt8, stageFTInt8, stageExportHeadInt8, stageExportFTInt8:
		return true
	}
	return false
}

// int8Model is the int8 copy of the comparison's model.
func (c *comparison) int8Model() string { return filepath.Join(c.s.Out, compareModelInt8Dir) }

// calibrationImages is the int8 model's calibration sample size.
func (c *comparison) calibrationImages() int {
	return cmpOrInt(c.s.CalibrationImages, quantize.DefaultImages)
}

// quantizeStage makes the int8 model as `models quantize` does: calibrated
// on a seeded sample (the comparison's seed) of the training images at the
// comparison's size. A finished one is reused while it was quantized from
// the model's current extractor.onnx.
func (c *comparison) quantizeStage() compareStage {
	s, out := c.s, c.int8Model()
	n := c.calibrationImages()
	cmd := []string{"models", "quantize", "--model", s.Model, "--calibrate", s.TrainData, "--out", out,
		"--calibrate-images", strconv.Itoa(n), "--seed", strconv.FormatUint(s.Seed, 10), "--size", strconv.Itoa(c.size), "--force"}
	return compareStage{
		name: stageQuantize, cmds: [][]string{cmd}, output: filepath.Join(out, models.ExtractorFile),
		run: func(ctx context.Context, p progress.Reporter) error {
			spec, err := quantize.Quantize(ctx, s.Model, s.TrainData, out, quantize.Settings{
				Images: n, Seed: s.Seed, Size: c.size, Threads: s.Runtime.Threads, Force: true, Progress: p})
			if err != nil {
				return err
			}
			return c.dropStaleInt8Caches(spec.ExtractorSHA256, p)
		},
		current: func() bool {
			spec, err := models.ReadSpec(out)
			if err != nil || !spec.Int8() {
				return false
			}
			sum, err := models.ExtractorSHA256(s.Model)
			return err == nil && sum == spec.Quantization.FromSHA256
		},
	}
}

// dropStaleInt8Caches removes the int8 caches that an earlier int8 model
// made (another extractor.onnx than sum): the int8 extraction then makes
// them again from the start, where it would refuse them as another
// model's. They are the comparison's own, made from its own model-int8.
func (c *comparison) dropStaleInt8Caches(sum string, p progress.Reporter) error {
	dir := filepath.Join(c.s.Out, compareCacheInt8Dir)
	stale := false
	for _, part := range []string{"train", "val"} {
		m, err := cache.ReadManifest(filepath.Join(dir, part))
		if err == nil && m.Model.ExtractorSHA256 != sum {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	p.Log(fmt.Sprintf("%s: made with an earlier %s; removing it to extract again", dir, compareModelInt8Dir))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

// extractionPass is what the extraction stage that wrote cacheDir/train
// and cacheDir/val took. Its speed is the one stages.json recorded; a
// record without one (written before it was kept, or of a pass that found
// its caches complete without a record of their making) takes the caches'
// own: their images over the time from each one's creation to its last
// update.
func (r *CompareResult) extractionPass(stage, cacheDir string) ExtractionPass {
	st := (&compareRecord{Stages: r.Stages}).find(stage)
	if st == nil {
		return ExtractionPass{}
	}
	e := ExtractionPass{Seconds: st.Seconds, ImagesPerSecond: st.ImagesPerSecond, Reused: st.Reused}
	var span float64
	for _, part := range []string{"train", "val"} {
		if m, err := cache.ReadManifest(filepath.Join(cacheDir, part)); err == nil {
			e.Images += m.N * max(1, m.Views)
			span += m.Updated.Sub(m.Created).Seconds()
		}
	}
	if e.ImagesPerSecond == 0 && span > 0 {
		e.ImagesPerSecond = float64(e.Images) / span
	}
	return e
}

// Int8Ratio is the int8 extraction's speed over the float32 one's, 0 when
// either is unknown.
func (r *CompareResult) Int8Ratio() float64 {
	f, q := r.Extraction.ImagesPerSecond, r.ExtractionInt8.ImagesPerSecond
	if f <= 0 || q <= 0 {
		return 0
	}
	return q / f
}

// formatPass is "12 s, 83.3 images/s".
func formatPass(e ExtractionPass) string {
	if e.ImagesPerSecond == 0 {
		return fsutil.FormatSeconds(e.Seconds)
	}
	return fmt.Sprintf("%s, %.1f images/s", fsutil.FormatSeconds(e.Seconds), e.ImagesPerSecond)
}

// int8Line is the terminal's line on the int8 extraction.
func (r *CompareResult) int8Line() string {
	line := "int8 extraction (the same images): " + formatPass(r.ExtractionInt8)
	if q := r.Int8Ratio(); q > 0 {
		line += fmt.Sprintf(", %.2f× float32", q)
	}
	if r.Quantization != nil {
		line += fmt.Sprintf("; quantization %s (%d calibration images)", fsutil.FormatSeconds(r.QuantizeSeconds), r.Quantization.Calibration.Images)
	}
	if r.Extraction.Reused != r.ExtractionInt8.Reused {
		line += "; the two passes ran in different calls"
	}
	return line
}

// int8Notes is report.md's section on the int8 rows.
func (c *comparison) int8Notes(r *CompareResult) string {
	var md strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	w("## float32 and int8\n\n")
	w("| | float32 | int8 | int8 − float32 |\n|---|---|---|---|\n")
	acc := func(what string, f32, i8 compareRow) {
		a, b := f32.kept().ValAccuracy, i8.kept().ValAccuracy
		w("| %s | %.4f | %.4f | %+.4f |\n", what, a, b, b-a)
	}
	rows := r.rowsByMode()
	acc("head-only: val accuracy (final)", rows[headMode], rows[headInt8Mode])
	acc("block5 fine-tuned: val accuracy (final)", rows[fineTuneMode], rows[fineTuneInt8Mode])
	ratio := "—"
	if q := r.Int8Ratio(); q > 0 {
		ratio = fmt.Sprintf("%.2f× the images/s", q)
	}
	w("| extraction of %d images (features and maps, end to end) | %s | %s | %s |\n\n",
		r.Extraction.Images, formatPass(r.Extraction), formatPass(r.ExtractionInt8), ratio)
	q := r.Quantization
	w("- `%s/` is the model quantized by `tlearn models quantize` in %s: int8 weights per output channel and uint8 activations whose ranges (min/max) were measured on %d images sampled with seed %d from `%s` at %d×%d",
		compareModelInt8Dir, fsutil.FormatSeconds(r.QuantizeSeconds), q.Calibration.Images, q.Calibration.Seed, q.Calibration.Data, q.Calibration.Size, q.Calibration.Size)
	if c.s.ValData == "" {
		w(" (all of the training images, before the split: the sample may hold validation images; with validation images of their own it cannot)")
	}
	w(".\n")
	w("- The int8 rows train on caches that the int8 model extracted from the same images, resized the same way (`%s/`): head-only on its pooled features (`%s/`); block5 fine-tuned on its block4_pool maps, which are int8 (`%s/`), starting from block5's float32 weights that `%s/` keeps. Their classifiers run blocks 1–4 in int8; the fine-tuned one runs its fine-tuned block5 in float32.\n",
		compareCacheInt8Dir, compareHeadInt8Dir, compareFTInt8Dir, compareModelInt8Dir)
	// Whether the passes ran in one call is left to the stages' "reused"
	// marks: a rerun's report says what an uninterrupted run's says.
	w("- Extraction times are end to end (listing, decoding, resizing, the model, writing features and maps), over the images each pass ran; the int8 pass runs right after the float32 one. A pass reused from an earlier call (see Stages) keeps that call's time, taken under that call's load: `--force` runs both again in one call.\n")
	if r.Best != nil {
		w("- tlearn best stays float32.\n")
	}
	w("\n")
	return md.String()
}
