package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// The tests of issue 10's "checksums that are checked": every reader of a
// cache, a prepared model or a run's weights stops at bytes changed after
// they were written, naming the file (and a cache's rows) and the fix.

// flipRow flips one bit in the first byte of row (of rowBytes bytes) of
// the finished array file p, counting rows from the end of the file.
func flipRow(t *testing.T, p string, n, row int, rowBytes int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[int64(len(b))-int64(n-row)*rowBytes] ^= 0x10
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantStderr checks a command's exit status and that its stderr holds
// every one of want.
func wantStderr(t *testing.T, what string, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d; stderr:\n%s", what, code, wantCode, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr lacks %q:\n%s", what, w, stderr)
		}
	}
}

// TestChangedFeaturesStopReaders: a bit flipped inside features.npy stops
// train and evaluate with the file, the chunk's rows and the fix.
func TestChangedFeaturesStopReaders(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	run := filepath.Join(root, "run")
	code, _, errs := runTlearn(t, "train", "--train", train, "--val", val, "--out", run, "--epochs", "1", "--hidden", "8", "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, errs)
	}
	p := filepath.Join(train, cache.FeaturesFile)
	flipRow(t, p, 60, 20, 12*4) // the fixture's chunks are 16 rows
	for _, args := range [][]string{
		{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "run2"), "--epochs", "1", "--quiet"},
		{"evaluate", "--run", run, "--cache", train},
	} {
		code, _, errs := runTlearn(t, args...)
		wantStderr(t, args[0], code, errs, 1, p, "rows [16,32)", "extract --force")
	}
	if _, err := os.Stat(filepath.Join(root, "run2")); !os.IsNotExist(err) {
		t.Errorf("train on a changed cache wrote a run: %v", err)
	}
}

// tinyModelData prepares the tiny model and a dataset of two classes.
func tinyModelData(t *testing.T) (model, data string) {
	t.Helper()
	ortlibtest.Init(t)
	root := t.TempDir()
	model = filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(root, "data")
	writePNGs(t, data, "cat", 6)
	writePNGs(t, data, "dog", 6)
	return model, data
}

func extractArgs(model, data, dir string, more ...string) []string {
	return append([]string{"extract", "--model", model, "--data", data, "--cache", dir, "--size", "64", "--batch", "2",
		"--device", "cpu", "--threads", "1"}, more...)
}

// TestFinetuneStopsAtChangedMaps: a bit flipped inside maps.npy stops
// finetune with the file and the rows.
func TestFinetuneStopsAtChangedMaps(t *testing.T) {
	model, data := tinyModelData(t)
	dir := filepath.Join(t.TempDir(), "cache")
	if code, _, errs := runTlearn(t, extractArgs(model, data, dir, "--maps", "--val", "0.34")...); code != 0 {
		t.Fatalf("extract: exit %d\n%s", code, errs)
	}
	train := filepath.Join(dir, "train")
	m, err := cache.ReadManifest(train)
	if err != nil {
		t.Fatal(err)
	}
	var maps cache.ArraySpec
	for _, a := range m.Arrays() {
		if a.File == cache.MapsFile {
			maps = a
		}
	}
	p := filepath.Join(train, cache.MapsFile)
	flipRow(t, p, m.N, m.N-1, maps.RowBytes())
	start, end := m.Chunk(m.NumChunks() - 1)
	code, _, errs := runTlearn(t, "finetune", "--model", model, "--train", train, "--val", filepath.Join(dir, "val"),
		"--out", filepath.Join(t.TempDir(), "run"), "--device", "cpu", "--threads", "1", "--hidden", "8", "--epochs", "1", "--batch", "4")
	wantStderr(t, "finetune", code, errs, 1, p, "rows ["+itoa(start)+","+itoa(end)+")", "extract --force")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestExtractRevalidatesUpToDate: features.npy emptied, cut in half or
// changed after a complete extraction is not "up to date".
func TestExtractRevalidatesUpToDate(t *testing.T) {
	model, data := tinyModelData(t)
	dir := filepath.Join(t.TempDir(), "cache")
	p := filepath.Join(dir, cache.FeaturesFile)
	for _, tc := range []struct {
		desc   string
		damage func(t *testing.T, m *cache.Manifest)
		want   string
	}{
		{"emptied", func(t *testing.T, _ *cache.Manifest) { os.Truncate(p, 0) }, p},
		{"cut in half", func(t *testing.T, _ *cache.Manifest) {
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()/2)
		}, "truncated or overwritten"},
		{"a bit flipped", func(t *testing.T, m *cache.Manifest) {
			flipRow(t, p, m.N, 0, int64(m.FeatureDim)*4)
		}, "rows [0,"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if code, _, errs := runTlearn(t, extractArgs(model, data, dir, "--force")...); code != 0 {
				t.Fatalf("extract: exit %d\n%s", code, errs)
			}
			m, err := cache.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, m)
			code, _, errs := runTlearn(t, extractArgs(model, data, dir)...)
			wantStderr(t, "extract again", code, errs, 1, p, tc.want, "extract --force")
			if strings.Contains(errs, "up to date") {
				t.Errorf("a damaged cache is up to date:\n%s", errs)
			}
		})
	}
}

// rewriteModel replaces the tiny model's extractor.onnx with edit's
// version and records its sha256 in spec.json ("" leaves the spec of an
// older tlearn, which records none).
func rewriteModel(t *testing.T, model string, edit func(*onnxpb.ModelProto), record bool) {
	t.Helper()
	p := filepath.Join(model, models.ExtractorFile)
	m, err := models.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	if err := models.Save(p, m); err != nil {
		t.Fatal(err)
	}
	spec, err := models.ReadSpec(model)
	if err != nil {
		t.Fatal(err)
	}
	spec.ExtractorSHA256 = ""
	if record {
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		spec.ExtractorSHA256 = hex.EncodeToString(sum[:])
	}
	if err := models.WriteSpec(model, spec); err != nil {
		t.Fatal(err)
	}
}

// TestExtractChecksModel: bytes changed inside extractor.onnx stop extract
// before any feature is computed; a model prepared before spec.json
// recorded the sha256 extracts with a one-line note.
func TestExtractChecksModel(t *testing.T) {
	model, data := tinyModelData(t)
	p := filepath.Join(model, models.ExtractorFile)
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(orig)
	for i := len(changed) / 2; i < len(changed)/2+16; i++ {
		changed[i] ^= 0xff
	}
	os.WriteFile(p, changed, 0o644)
	dir := filepath.Join(t.TempDir(), "cache")
	code, _, errs := runTlearn(t, extractArgs(model, data, dir)...)
	wantStderr(t, "extract with a changed model", code, errs, 1, p, "has sha256", "models prepare")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("extract with a changed model made %s: %v", dir, err)
	}

	os.WriteFile(p, orig, 0o644)
	rewriteModel(t, model, func(*onnxpb.ModelProto) {}, false)
	code, _, errs = runTlearn(t, extractArgs(model, data, dir)...)
	wantStderr(t, "extract with an older model", code, errs, 0, "note: "+model+" was prepared by an older tlearn")
}

// TestExtractStopsAtNonFinite: a model whose weights hold NaN stops
// extract at the first batch, naming its images and suspecting the model.
func TestExtractStopsAtNonFinite(t *testing.T) {
	model, data := tinyModelData(t)
	rewriteModel(t, model, func(m *onnxpb.ModelProto) {
		for i, tp := range m.Graph.Initializer {
			if tp.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || len(tp.Dims) != 4 {
				continue
			}
			n := int64(1)
			for _, d := range tp.Dims {
				n *= d
			}
			nan := make([]float32, n)
			for j := range nan {
				nan[j] = float32(math.NaN())
			}
			m.Graph.Initializer[i] = models.NewTensorFloat32(tp.GetName(), tp.Dims, nan)
			return // the first convolution: every later value is NaN
		}
		t.Fatal("no convolution weights")
	}, true)
	dir := filepath.Join(t.TempDir(), "cache")
	code, _, errs := runTlearn(t, extractArgs(model, data, dir)...)
	wantStderr(t, "extract", code, errs, 1, "NaN or Inf", filepath.Join(data, "cat", "a.png"), filepath.Join(model, models.ExtractorFile), "the model is likely damaged", "tlearn models prepare")
	m, err := cache.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DoneRows() != 0 {
		t.Errorf("%d rows of NaN features were kept", m.DoneRows())
	}
}

// TestChangedWeightsRefused: a changed weights.safetensors body stops
// evaluate and export naming the file; a run written before settings.json
// recorded the sha256 evaluates with a one-line note.
func TestChangedWeightsRefused(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	run := filepath.Join(root, "run")
	var stdout, stderr bytes.Buffer
	if err := trainApp(&stdout, &stderr).Run([]string{"tlearn", "train", "--train", train, "--val", val, "--out", run, "--epochs", "1", "--hidden", "8", "--quiet"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(run, rundir.WeightsFile)
	orig, _ := os.ReadFile(p)
	changed := bytes.Clone(orig)
	changed[len(changed)-3] ^= 0x01 // inside the last tensor: parses fine
	os.WriteFile(p, changed, 0o644)
	stderr.Reset()
	code := runApp(context.Background(), trainApp(&stdout, &stderr), []string{"tlearn", "evaluate", "--run", run, "--cache", val})
	wantStderr(t, "evaluate changed weights", code, stderr.String(), 1, p, "has sha256", "train the run again")

	// The same changed weights in a run of an older tlearn load, with a note.
	os.WriteFile(p, orig, 0o644)
	sp := filepath.Join(run, rundir.SettingsFile)
	var settings map[string]any
	b, _ := os.ReadFile(sp)
	if err := json.Unmarshal(b, &settings); err != nil {
		t.Fatal(err)
	}
	if settings["weights_sha256"] == nil {
		t.Fatalf("settings.json records no weights_sha256: %s", b)
	}
	delete(settings, "weights_sha256")
	b, _ = json.Marshal(settings)
	os.WriteFile(sp, b, 0o644)
	stderr.Reset()
	code = runApp(context.Background(), trainApp(&stdout, &stderr), []string{"tlearn", "evaluate", "--run", run, "--cache", val})
	wantStderr(t, "evaluate an older run", code, stderr.String(), 0, "note: "+run+" was written by an older tlearn")
}
