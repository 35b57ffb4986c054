package compat

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/extractor/classify"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// The fixture paths. The files record absolute paths of the machine that
// made them (/work/main/testdata/v1/...); the tests never follow those and
// pass these instead.
var (
	v1       = filepath.Join("..", "..", "testdata", "v1")
	modelDir = filepath.Join(v1, "model")
	trainDir = filepath.Join(v1, "cache", "train")
	valDir   = filepath.Join(v1, "cache", "val")
	runHead  = filepath.Join(v1, "run-head")
	runFT    = filepath.Join(v1, "run-ft")
	evalText = filepath.Join(v1, "run-head.eval.txt")
)

// What scripts/gen-fixtures.sh made: 2 MNIST digits per class split in
// halves at size 32 with the tiny synthetic VGG16 (32 channels, 2×2 maps),
// a head trained for 3 epochs and a fine-tuning of 2 epochs.
var (
	digits    = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	perCache  = 10
	dim       = 32
	mapsShape = []int{32, 2, 2}
)

// openCache verifies and opens the cache in dir, closed when the test ends.
func openCache(t *testing.T, dir string) *cache.Cache {
	t.Helper()
	if err := cache.Verify(context.Background(), dir); err != nil {
		t.Fatalf("verify %s: %v", dir, err)
	}
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestCaches(t *testing.T) {
	var fingerprint string
	for _, tc := range []struct {
		dir, part string
	}{
		{trainDir, "train"},
		{valDir, "val"},
	} {
		t.Run(tc.part, func(t *testing.T) {
			c := openCache(t, tc.dir)
			m := c.Manifest
			if m.Format != cache.FormatVersion {
				t.Errorf("format %d, want %d", m.Format, cache.FormatVersion)
			}
			if !m.Complete() || m.N != perCache || c.Len() != perCache {
				t.Errorf("complete %v, n %d, Len %d; want a complete cache of %d", m.Complete(), m.N, c.Len(), perCache)
			}
			if !slices.Equal(m.Classes, digits) {
				t.Errorf("classes %v, want %v", m.Classes, digits)
			}
			if got := m.ClassCounts(); !slices.Equal(got, slices.Repeat([]int{1}, len(digits))) {
				t.Errorf("class counts %v, want one image per class", got)
			}
			if m.Split == nil || m.Split.Part != tc.part {
				t.Errorf("split %+v, want part %q", m.Split, tc.part)
			}
			if m.Size != 32 || m.Interpolation != string(dataset.Nearest) {
				t.Errorf("size %d, interpolation %q; want 32, nearest", m.Size, m.Interpolation)
			}
			if m.FeatureDim != dim || !slices.Equal(m.MapsShape, mapsShape) {
				t.Errorf("feature dim %d, maps %v; want %d, %v", m.FeatureDim, m.MapsShape, dim, mapsShape)
			}
			if len(c.Features) != perCache*dim || len(c.Labels) != perCache || len(c.Maps) != perCache*32*2*2 {
				t.Errorf("arrays of %d features, %d labels, %d map values", len(c.Features), len(c.Labels), len(c.Maps))
			}
			for i, y := range c.Labels {
				if y != int32(m.Items[i].Label) {
					t.Errorf("row %d: label %d, the manifest says %d", i, y, m.Items[i].Label)
				}
			}
			for i, x := range c.Features {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("feature %d is %v", i, x)
				}
			}
			if err := c.Verify(context.Background()); err != nil {
				t.Error(err)
			}
			if fingerprint == "" {
				fingerprint = m.Fingerprint
			} else if m.Fingerprint != fingerprint {
				t.Errorf("fingerprint %s, the train cache has %s", m.Fingerprint, fingerprint)
			}
		})
	}
}

func TestModel(t *testing.T) {
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Preset != models.PresetTorchvision || spec.Features.Dim != dim || spec.Maps == nil || spec.Block5 == nil || spec.Block5.Channels != mapsShape[0] {
		t.Fatalf("spec %+v", spec)
	}
	b5, err := models.ReadBlock5(modelDir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(b5) != 6 {
		t.Errorf("block5 has %d tensors, want 6", len(b5))
	}
	sha, err := models.ExtractorSHA256(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{trainDir, valDir} {
		m, err := cache.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.Model.ExtractorSHA256 != sha || m.Model.Preset != spec.Preset {
			t.Errorf("%s: model sha256 %s, preset %s; the model has %s, %s", dir, m.Model.ExtractorSHA256, m.Model.Preset, sha, spec.Preset)
		}
	}
	for _, dir := range []string{runHead, runFT} {
		info, err := rundir.ReadInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.ModelSHA256 != sha {
			t.Errorf("%s: model_sha256 %s, the model has %s", dir, info.ModelSHA256, sha)
		}
	}
}

func TestRuns(t *testing.T) {
	tm, err := cache.ReadManifest(trainDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, mode string
		epochs    int
		block5    bool
	}{
		{runHead, rundir.ModeHead, 3, false},
		{runFT, rundir.ModeFineTune, 2, true},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			info, err := rundir.ReadInfo(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode != tc.mode || !slices.Equal(info.Classes, digits) {
				t.Errorf("mode %q, classes %v", info.Mode, info.Classes)
			}
			for _, ref := range []rundir.CacheRef{info.TrainCache, info.ValCache} {
				if ref.Fingerprint != tm.Fingerprint || ref.N != perCache {
					t.Errorf("cache ref %+v, want fingerprint %s and %d images", ref, tm.Fingerprint, perCache)
				}
			}

			w, err := rundir.LoadWeights(filepath.Join(tc.dir, rundir.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if w.InputDim() != dim || w.HiddenSize() != head.DefaultHidden || !slices.Equal(w.Classes, digits) {
				t.Errorf("weights: %d inputs, hidden %d, classes %v", w.InputDim(), w.HiddenSize(), w.Classes)
			}
			for i := range 3 {
				for _, name := range []string{models.Block5WeightName(i + 1), models.Block5BiasName(i + 1)} {
					if _, ok := w.Tensors[name]; ok != tc.block5 {
						t.Errorf("weights hold %s: %v, want %v", name, ok, tc.block5)
					}
				}
			}

			h, err := rundir.ReadHistory(filepath.Join(tc.dir, rundir.HistoryFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != tc.epochs {
				t.Fatalf("history of %d epochs, want %d", len(h), tc.epochs)
			}
			for i, e := range h {
				if e.Epoch != i+1 {
					t.Errorf("history line %d: epoch %d, want %d (counted from 1)", i+1, e.Epoch, i+1)
				}
			}

			m, err := rundir.ReadMetrics(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			last, best := h[len(h)-1], h[h.Best()]
			if m.EpochsRun != tc.epochs || m.WeightsEpoch != tc.epochs || m.EarlyStopped {
				t.Errorf("metrics: %d epochs run, weights of epoch %d, early stopped %v", m.EpochsRun, m.WeightsEpoch, m.EarlyStopped)
			}
			if !sameEpoch(m.Final, last) || !sameEpoch(m.Best, best) {
				t.Errorf("metrics final %+v, best %+v; history's last %+v, best %+v", m.Final, m.Best, last, best)
			}
			if v := m.Validation; v == nil || v.N != perCache || !slices.Equal(v.Classes, digits) {
				t.Errorf("metrics validation %+v", v)
			}
		})
	}
}

func TestHeadSettings(t *testing.T) {
	s, err := rundir.ReadHeadSettings(runHead)
	if err != nil {
		t.Fatal(err)
	}
	want := head.Settings{Hidden: head.DefaultHidden, Dropout: head.DefaultDropout, LR: head.DefaultLR, Batch: head.DefaultBatch, Epochs: 3, Seed: 1}
	if s.Mode != rundir.ModeHead || s.Settings.Resolve() != want.Resolve() {
		t.Errorf("mode %q, settings %+v; want %+v", s.Mode, s.Settings, want)
	}
}

// sameEpoch compares the epochs of metrics.json and history.csv, which
// alone records no seconds.
func sameEpoch(a, b head.Epoch) bool {
	a.Seconds, b.Seconds = 0, 0
	return a == b
}

// TestEvaluateHead evaluates run-head on the validation cache and compares
// the figures with what the old binary's `tlearn evaluate` printed, to the
// printed digits, and with its metrics.json.
func TestEvaluateHead(t *testing.T) {
	w, err := rundir.LoadWeights(filepath.Join(runHead, rundir.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	c := openCache(t, valDir)
	rep, err := head.Evaluate(context.Background(), w, &head.Data{X: c.Features, Y: c.Labels, Classes: c.Manifest.Classes}, 5)
	if err != nil {
		t.Fatal(err)
	}
	printed := readEvalText(t, evalText)
	for _, tc := range []struct {
		key string
		got float64
	}{
		{"examples", float64(rep.N)},
		{"accuracy", rep.Accuracy},
		{"top-5 accuracy", rep.TopKAccuracy},
		{"loss", rep.Loss},
		{"macro F1", rep.MacroF1},
	} {
		want, ok := printed[tc.key]
		if !ok {
			t.Errorf("%s prints no %q", evalText, tc.key)
			continue
		}
		if got := formatLike(tc.got, want); got != want {
			t.Errorf("%s: %s today, %s printed by the old binary", tc.key, got, want)
		}
	}
	m, err := rundir.ReadMetrics(runHead)
	if err != nil {
		t.Fatal(err)
	}
	compareReports(t, rep, m.Validation, 1e-6)
}

// TestEvaluateFineTuned evaluates run-ft (block5 and head) on the
// validation cache's maps under ONNX Runtime and compares with the
// validation report in its metrics.json.
func TestEvaluateFineTuned(t *testing.T) {
	ortlibtest.Init(t)
	w, err := rundir.LoadWeights(filepath.Join(runFT, rundir.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	c := openCache(t, valDir)
	s := c.Manifest.MapsShape
	d := &finetune.MapsData{Maps: c.Maps, Y: c.Labels, Classes: c.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}}
	rep, err := finetune.Evaluate(context.Background(), w, d, 5, ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rundir.ReadMetrics(runFT)
	if err != nil {
		t.Fatal(err)
	}
	// Float32 under ORT: the loss may differ in its last digits from the
	// old binary's, the predictions may not.
	compareReports(t, rep, m.Validation, 1e-5)
}

// compareReports compares today's evaluation with one recorded in a
// metrics.json: counts and accuracies exactly, the loss within tol.
func compareReports(t *testing.T, got, want *head.Report, tol float64) {
	t.Helper()
	if want == nil {
		t.Fatal("metrics.json has no validation report")
	}
	if got.N != want.N || got.Accuracy != want.Accuracy || got.TopK != want.TopK || got.TopKAccuracy != want.TopKAccuracy {
		t.Errorf("n %d, accuracy %v, top-%d accuracy %v; metrics.json: %d, %v, top-%d %v",
			got.N, got.Accuracy, got.TopK, got.TopKAccuracy, want.N, want.Accuracy, want.TopK, want.TopKAccuracy)
	}
	if math.Abs(got.Loss-want.Loss) > tol*math.Abs(want.Loss) {
		t.Errorf("loss %v, metrics.json %v", got.Loss, want.Loss)
	}
	if !slices.EqualFunc(got.Confusion, want.Confusion, slices.Equal) {
		t.Errorf("confusion %v, metrics.json %v", got.Confusion, want.Confusion)
	}
}

// readEvalText reads the "name: value" lines that head the text report of
// `tlearn evaluate`.
func readEvalText(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			break
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vals
}

// formatLike formats x with as many decimals as printed has.
func formatLike(x float64, printed string) string {
	decimals := 0
	if _, frac, ok := strings.Cut(printed, "."); ok {
		decimals = len(frac)
	}
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

// TestExport builds a classifier from each run (what `tlearn export` does)
// and reads it back, as metadata and as an ORT session.
func TestExport(t *testing.T) {
	ortlibtest.Init(t)
	sha, err := models.ExtractorSHA256(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run, mode string
	}{
		{runHead, classifier.ModeHead},
		{runFT, classifier.ModeFinetune},
	} {
		t.Run(filepath.Base(tc.run), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "classifier.onnx")
			// Model, Size and Interpolation are given: the run's settings.json
			// names the folders of the machine that made the fixtures.
			_, err := experiment.Export(context.Background(), experiment.ExportSettings{
				Run: tc.run, Out: out, Model: modelDir, Size: 32, Interpolation: dataset.Nearest, Threads: 1,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := models.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			info, err := classifier.ReadInfo(m)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode != tc.mode || !slices.Equal(info.Classes, digits) || info.Size != 32 ||
				info.Interpolation != dataset.Nearest || info.SourceSHA256 != sha || info.Preset != models.PresetTorchvision {
				t.Errorf("classifier info %+v", info)
			}
			c, err := classify.Open(out, classify.Options{ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Classes(), digits) || c.Size() != 32 {
				t.Errorf("opened classifier: classes %v, size %d", c.Classes(), c.Size())
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestUnchecked: the old model and runs record no sha256 of extractor.onnx
// or weights.safetensors; they load unchecked, with a one-line note.
func TestUnchecked(t *testing.T) {
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	if spec.ExtractorSHA256 != "" {
		t.Errorf("the old spec.json records extractor sha256 %s", spec.ExtractorSHA256)
	}
	if _, _, err := models.ReadExtractor(modelDir); err != nil {
		t.Errorf("ReadExtractor: %v", err)
	}
	if note := models.NoSHA256Note(modelDir); strings.Count(note, "\n") != 0 || !strings.Contains(note, modelDir) {
		t.Errorf("note %q", note)
	}
	for _, dir := range []string{runHead, runFT} {
		info, err := rundir.ReadInfo(dir)
		if err != nil {
			t.Fatal(err)
		}
		if note := info.NoteUnchecked(dir); !strings.Contains(note, dir) || strings.Contains(note, "\n") {
			t.Errorf("%s: note %q", dir, note)
		}
		if _, err := rundir.LoadWeights(filepath.Join(dir, rundir.WeightsFile)); err != nil {
			t.Errorf("LoadWeights: %v", err)
		}
	}
}
