package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/quantize"
)

// --int8 added to a finished comparison runs the int8 stages alone (the
// float32 ones are reused, their runs untouched), writes the int8 rows
// beside their float32 twins with both extractions' speeds, resumes an
// interrupted int8 stage, quantizes again when the model it came from is
// no longer the comparison's, and refuses a model that is int8 already.
func TestCompareInt8(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	s.NoBest = true // the int8 rows do not touch tlearn best: a shorter test
	if _, err := Compare(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(s.Out, compareHeadDir, rundir.WeightsFile)
	before, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}

	// Interrupted as the int8 fine-tuning starts.
	s.Int8, s.CalibrationImages = true, 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &stageRecorder{onStage: func(name string) {
		if name == stageFTInt8 {
			cancel()
		}
	}}
	if _, err := Compare(ctx, s, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted comparison: err = %v, want context.Canceled", err)
	}
	if want := []string{stageExtract, stageQuantize, stageExtractInt8, stageHeadInt8, stageFTInt8}; !slices.Equal(first.ran, want) {
		t.Errorf("--int8 on a finished comparison ran %v, want %v", first.ran, want)
	}
	if want := []string{stageHead, stageFineTune}; !slices.Equal(first.reused, want) {
		t.Errorf("--int8 on a finished comparison reused %v, want %v", first.reused, want)
	}

	second := &stageRecorder{}
	res, err := Compare(context.Background(), s, second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{stageExtract, stageExtractInt8, stageFTInt8, stageExportHeadInt8, stageExportFTInt8}; !slices.Equal(second.ran, want) {
		t.Errorf("resumed comparison ran %v, want %v", second.ran, want)
	}
	if want := []string{stageQuantize, stageHead, stageHeadInt8, stageFineTune, stageExportHead, stageExportFineTune}; !slices.Equal(second.reused, want) {
		t.Errorf("resumed comparison reused %v, want %v", second.reused, want)
	}
	if after, err := os.Stat(weights); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the float32 head run was redone: %v", err)
	}

	// The int8 caches are the int8 model's, of the same images.
	spec8, err := models.ReadSpec(filepath.Join(s.Out, compareModelInt8Dir))
	if err != nil || !spec8.Int8() || spec8.Quantization.Calibration.Images != 8 || spec8.Quantization.Calibration.Seed != s.Seed || spec8.DefaultSize != 32 {
		t.Fatalf("int8 model: %+v, %v; want 8 calibration images, seed %d, size 32", spec8, err, s.Seed)
	}
	for _, part := range []string{"train", "val"} {
		m32, err := cache.ReadManifest(filepath.Join(s.Out, compareCacheDir, part))
		if err != nil {
			t.Fatal(err)
		}
		m8, err := cache.ReadManifest(filepath.Join(s.Out, compareCacheInt8Dir, part))
		if err != nil {
			t.Fatal(err)
		}
		if m8.Model.Quantization != models.SchemeInt8QDQ || m8.Model.ExtractorSHA256 != spec8.ExtractorSHA256 || m8.N != m32.N ||
			m8.Interpolation != m32.Interpolation || len(m8.MapsShape) != 3 {
			t.Errorf("%s: int8 cache %+v (N %d, %s, maps %v); float32 N %d, %s", part, m8.Model, m8.N, m8.Interpolation, m8.MapsShape, m32.N, m32.Interpolation)
		}
	}
	for _, f := range []string{compareHeadInt8Dir, compareFTInt8Dir} {
		if !fileExists(filepath.Join(s.Out, f, classifierFile)) {
			t.Errorf("%s/%s is missing", f, classifierFile)
		}
	}

	// The result and the report.
	const images = 3 * (12 + 4)
	if res.HeadInt8 == nil || res.FineTuneInt8 == nil || res.Quantization == nil {
		t.Fatalf("result without int8 rows: %+v", res)
	}
	if res.Extraction.Images != images || res.ExtractionInt8.Images != images || !(res.Int8Ratio() > 0) || !(res.QuantizeSeconds > 0) {
		t.Errorf("extraction passes %+v and %+v, ratio %v, quantization %v s; want %d images each", res.Extraction, res.ExtractionInt8, res.Int8Ratio(), res.QuantizeSeconds, images)
	}
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	order := func(text string, modes ...string) bool {
		at := -1
		for _, m := range modes {
			i := strings.Index(text, m)
			if i <= at {
				return false
			}
			at = i
		}
		return true
	}
	for _, text := range []string{string(md), table.String()} {
		if !order(text, "| "+headMode, "| "+headInt8Mode, "| "+fineTuneMode, "| "+fineTuneInt8Mode) &&
			!order(text, "\n"+headMode, "\n"+headInt8Mode, "\n"+fineTuneMode, "\n"+fineTuneInt8Mode) {
			t.Errorf("the rows are not float32 then int8, head-only then fine-tuned:\n%s", text)
		}
	}
	for _, want := range []string{"## float32 and int8", "tlearn models quantize --model " + s.Model, "--calibrate-images 8", "int8 maps",
		"tlearn extract --model " + filepath.Join(s.Out, compareModelInt8Dir), "images/s"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(table.String(), "int8 extraction (the same images)") || !strings.Contains(table.String(), "× float32") {
		t.Errorf("the table lacks the int8 extraction:\n%s", table.String())
	}

	// Finished: only the extractions' checks run, and the times are kept.
	third := &stageRecorder{}
	res3, err := Compare(context.Background(), s, third)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.ran, []string{stageExtract, stageExtractInt8}) || len(third.reused) != 9 {
		t.Errorf("third comparison ran %v and reused %v, want only the extractions' checks to run", third.ran, third.reused)
	}
	if res3.ExtractionInt8 != (ExtractionPass{Images: images, Seconds: res.ExtractionInt8.Seconds, ImagesPerSecond: res.ExtractionInt8.ImagesPerSecond, Reused: true}) {
		t.Errorf("kept int8 pass %+v, want %+v reused", res3.ExtractionInt8, res.ExtractionInt8)
	}

	// An int8 model quantized from another extractor is made again, and
	// the int8 caches of another int8 model than the new one are made
	// again (here: a manifest that names another), and the int8 runs.
	spec8.Quantization.FromSHA256 = strings.Repeat("0", 64)
	if err := models.WriteSpec(filepath.Join(s.Out, compareModelInt8Dir), spec8); err != nil {
		t.Fatal(err)
	}
	trainCache8 := filepath.Join(s.Out, compareCacheInt8Dir, "train")
	m8, err := cache.ReadManifest(trainCache8)
	if err != nil {
		t.Fatal(err)
	}
	m8.Model.ExtractorSHA256 = strings.Repeat("1", 64)
	if b, err := json.Marshal(m8); err != nil || os.WriteFile(filepath.Join(trainCache8, cache.ManifestFile), b, 0o644) != nil {
		t.Fatal(err)
	}
	fourth := &stageRecorder{}
	if _, err := Compare(context.Background(), s, fourth); err != nil {
		t.Fatal(err)
	}
	if want := []string{stageExtract, stageQuantize, stageExtractInt8, stageHeadInt8, stageFTInt8, stageExportHeadInt8, stageExportFTInt8}; !slices.Equal(fourth.ran, want) {
		t.Errorf("with an int8 model of another extractor and caches of another int8 model: ran %v, want %v", fourth.ran, want)
	}
	spec, err := models.ReadSpec(filepath.Join(s.Out, compareModelInt8Dir))
	if err != nil || spec.Quantization.FromSHA256 == spec8.Quantization.FromSHA256 {
		t.Fatalf("the int8 model was not made again: %v", err)
	}
	if m, err := cache.ReadManifest(trainCache8); err != nil || m.Model.ExtractorSHA256 != spec.ExtractorSHA256 {
		t.Errorf("the int8 train cache is not the new int8 model's: %v", err)
	}

	// Without --int8 the report is the float32 one again, and stages.json
	// keeps the int8 stages for a later --int8.
	s.Int8, s.CalibrationImages = false, 0
	res5, err := Compare(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res5.HeadInt8 != nil || slices.ContainsFunc(res5.Stages, func(st Stage) bool { return isInt8Stage(st.Name) }) {
		t.Errorf("a comparison without int8 reports int8 rows or stages: %+v", res5.Stages)
	}
	rec := &compareRecord{}
	if err := readJSONFile(filepath.Join(s.Out, compareStagesFile), rec); err != nil || rec.find(stageFTInt8) == nil {
		t.Errorf("stages.json lost the int8 stages: %v", err)
	}

	// An int8 model is refused before anything is written.
	s.Int8, s.Model, s.Out = true, filepath.Join(s.Out, compareModelInt8Dir), filepath.Join(t.TempDir(), "report8")
	if _, err := Compare(context.Background(), s, nil); !errors.Is(err, quantize.ErrQuantized) || !strings.Contains(err.Error(), s.Model) {
		t.Errorf("--int8 on an int8 model: err = %v, want quantize.ErrQuantized naming it", err)
	}
	if fileExists(filepath.Join(s.Out, compareStagesFile)) {
		t.Error("the refused comparison wrote stages.json")
	}
}

// A stages.json written before extractions recorded their speed: the
// report takes the caches' own (images over their making's time span).
func TestExtractionPassFromCaches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, part := range []struct {
		name  string
		n     int
		taken time.Duration
	}{{"train", 30, 3 * time.Second}, {"val", 10, time.Second}} {
		cc := filepath.Join(dir, part.name)
		fixtures.FeatureCache(t, cc, part.n, 4, []string{"a", "b"}, "aaaa", 1)
		m, err := cache.ReadManifest(cc)
		if err != nil {
			t.Fatal(err)
		}
		m.Created, m.Updated = created, created.Add(part.taken)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cc, cache.ManifestFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &CompareResult{Stages: []Stage{{Name: stageExtract, Seconds: 9}, {Name: stageExtractInt8, Seconds: 2, ImagesPerSecond: 25}}}
	if got, want := r.extractionPass(stageExtract, dir), (ExtractionPass{Images: 40, Seconds: 9, ImagesPerSecond: 10}); got != want {
		t.Errorf("unrecorded speed: %+v, want %+v", got, want)
	}
	if got := r.extractionPass(stageExtractInt8, dir); got.ImagesPerSecond != 25 {
		t.Errorf("recorded speed: %+v, want 25 images/s", got)
	}
	if got := r.extractionPass(stageQuantize, dir); got != (ExtractionPass{}) {
		t.Errorf("a stage never run: %+v", got)
	}
}
