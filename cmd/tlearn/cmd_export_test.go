package main

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// exportSize is the input side of these tests: the smallest a VGG takes.
const exportSize = "32"

// exportFixture is a prepared tiny VGG16, a class-folder dataset, its
// feature cache and a run directory with seeded weights.
type exportFixture struct {
	model, data, cache, run string
	classes                 []string
	sha                     string
	weights                 *head.Weights
}

// extractCache runs `tlearn extract` of data with model into dir.
func extractCache(t *testing.T, model, data, dir string) {
	t.Helper()
	code, _, errs := runTlearn(t, "extract", "--model", model, "--data", data, "--cache", dir, "--size", exportSize,
		"--interpolation", "bilinear", "--batch", "4", "--device", "cpu", "--threads", "1")
	if code != 0 {
		t.Fatalf("extract: exit %d\n%s", code, errs)
	}
}

func newExportFixture(t *testing.T, hidden int) *exportFixture {
	t.Helper()
	ortlibtest.Init(t)
	root := t.TempDir()
	f := &exportFixture{
		model: filepath.Join(root, "model"), data: filepath.Join(root, "data"),
		cache: filepath.Join(root, "cache"), run: filepath.Join(root, "run"),
		classes: []string{"cat", "dog", "owl"},
	}
	if _, err := models.WriteTinyPrepared(f.model, 1); err != nil {
		t.Fatal(err)
	}
	sha, err := models.ExtractorSHA256(f.model)
	if err != nil {
		t.Fatal(err)
	}
	f.sha = sha
	for i, c := range f.classes {
		fixtures.ClassImages(t, f.data, c, 3+i, uint64(i))
	}
	extractCache(t, f.model, f.data, f.cache)
	cc, err := cache.Open(f.cache)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	f.weights = seededWeights(cc.Manifest.FeatureDim, hidden, f.classes, cc.Features)
	f.writeRun(t, rundir.ModeHead, f.weights)
	return f
}

// seededWeights is a head whose probabilities are far from 0 and 1 on the
// features feats (rows of d): the first layer standardizes them, since
// pooled features share a large positive component.
func seededWeights(d, hidden int, classes []string, feats []float32) *head.Weights {
	n := len(feats) / d
	mean, std := make([]float64, d), make([]float64, d)
	for r := range n {
		for i, v := range feats[r*d : (r+1)*d] {
			mean[i] += float64(v) / float64(n)
		}
	}
	for r := range n {
		for i, v := range feats[r*d : (r+1)*d] {
			std[i] += (float64(v) - mean[i]) * (float64(v) - mean[i]) / float64(n)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	w := &head.Weights{Classes: classes, Tensors: map[string]head.Tensor{}}
	dense := func(kernel, bias string, in, out int, standardize bool) {
		k, b := head.NewTensor(in, out), head.NewTensor(out)
		for i := range in {
			scale := 1.5 / math.Sqrt(float64(in))
			if standardize {
				scale /= math.Sqrt(std[i]) + 1e-6
			}
			for j := range out {
				v := rng.NormFloat64() * scale
				k.Data[i*out+j] = float32(v)
				if standardize {
					b.Data[j] -= float32(v * mean[i])
				}
			}
		}
		w.Tensors[kernel], w.Tensors[bias] = k, b
	}
	in := d
	if hidden > 0 {
		dense(head.HiddenWeight, head.HiddenBias, d, hidden, true)
		in = hidden
	}
	dense(head.OutputWeight, head.OutputBias, in, len(classes), hidden == 0)
	return w
}

// writeRun writes f.run as a trainer would: settings.json and weights.
func (f *exportFixture) writeRun(t *testing.T, mode string, w *head.Weights) {
	t.Helper()
	if err := os.MkdirAll(f.run, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(f.model)
	cacheAbs, _ := filepath.Abs(f.cache)
	info := rundir.Info{Mode: mode, ModelDir: abs, ModelSHA256: f.sha, Classes: f.classes, TrainCache: rundir.CacheRef{Dir: cacheAbs}}
	if err := rundir.WriteJSON(filepath.Join(f.run, rundir.SettingsFile), info); err != nil {
		t.Fatal(err)
	}
	if err := rundir.SaveWeights(filepath.Join(f.run, rundir.WeightsFile), w); err != nil {
		t.Fatal(err)
	}
}

// cachedProbs is the cached-feature path: the cache's features through
// head.Predict, keyed by image path.
func cachedProbs(t *testing.T, cacheDir, data string, w *head.Weights) map[string][]float32 {
	t.Helper()
	cc, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	p, err := head.Predict(w, cc.Features)
	if err != nil {
		t.Fatal(err)
	}
	k := len(w.Classes)
	out := map[string][]float32{}
	for i, it := range cc.Manifest.Items {
		out[filepath.Join(data, filepath.FromSlash(it.Path))] = p[i*k : (i+1)*k]
	}
	return out
}

// finetuned returns w with block5 parameters: the prepared model's,
// scaled and shifted by seeded noise.
func finetuned(t *testing.T, model string, w *head.Weights) *head.Weights {
	t.Helper()
	spec, err := models.ReadSpec(model)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(model, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 2))
	ft := w.Clone()
	for i := range 3 {
		for j, src := range []string{spec.Block5.ConvWeights[i], spec.Block5.ConvBiases[i]} {
			tp, _ := models.Initializer(ext, src)
			v, dims, err := models.TensorFloat32(tp)
			if err != nil {
				t.Fatal(err)
			}
			for k := range v {
				v[k] = v[k]*float32(0.5+rng.Float64()) + float32(rng.NormFloat64()*0.05)
			}
			shape := make([]int, len(dims))
			for k, d := range dims {
				shape[k] = int(d)
			}
			name := models.Block5WeightName(i + 1)
			if j == 1 {
				name = models.Block5BiasName(i + 1)
			}
			ft.Tensors[name] = head.Tensor{Shape: shape, Data: v}
		}
	}
	return ft
}

// swappedModel prepares a copy of model whose block5 initializers hold
// w's fine-tuned values: the reference for a fine-tuned classifier.
func swappedModel(t *testing.T, model string, w *head.Weights) string {
	t.Helper()
	spec, err := models.ReadSpec(model)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(model, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	m := proto.Clone(ext).(*onnxpb.ModelProto)
	for i := range 3 {
		for j, name := range []string{spec.Block5.ConvWeights[i], spec.Block5.ConvBiases[i]} {
			src := models.Block5WeightName(i + 1)
			if j == 1 {
				src = models.Block5BiasName(i + 1)
			}
			for k, tp := range m.Graph.Initializer {
				if tp.GetName() == name {
					m.Graph.Initializer[k] = models.NewTensorFloat32(name, tp.Dims, w.Tensors[src].Data)
				}
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "swapped")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := models.Save(filepath.Join(dir, models.ExtractorFile), m); err != nil {
		t.Fatal(err)
	}
	// The spec records the sha256 of the model it sits next to.
	b, err := os.ReadFile(filepath.Join(dir, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	spec.ExtractorSHA256 = hex.EncodeToString(sum[:])
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExportErrors(t *testing.T) {
	f := newExportFixture(t, 0)
	other := filepath.Join(t.TempDir(), "wide")
	if _, err := models.WriteSynthPrepared(other, models.SynthSettings{Seed: 2, Width: 1.0 / 8}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "c.onnx")
	cases := []struct {
		desc   string
		mutate func(t *testing.T, run string)
		extra  []string
		code   int
		want   string
	}{
		{"no settings", func(t *testing.T, run string) { os.Remove(filepath.Join(run, rundir.SettingsFile)) }, nil, 1, "not a run directory"},
		{"no weights", func(t *testing.T, run string) { os.Remove(filepath.Join(run, rundir.WeightsFile)) }, nil, 1, rundir.WeightsFile},
		{"corrupt weights", func(t *testing.T, run string) {
			p := filepath.Join(run, rundir.WeightsFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-7], 0o644)
		}, nil, 1, filepath.Join("run", rundir.WeightsFile) + ": tensor"},
		{"class mismatch", func(t *testing.T, run string) {
			w := seededWeights(32, 0, []string{"cat", "dog"}, make([]float32, 32))
			rundir.SaveWeights(filepath.Join(run, rundir.WeightsFile), w)
		}, nil, 1, "class mismatch"},
		{"features do not fit", func(t *testing.T, run string) {
			rundir.SaveWeights(filepath.Join(run, rundir.WeightsFile), seededWeights(40, 0, f.classes, make([]float32, 40)))
		}, nil, 1, "output layer takes 40 features but the model's features have 32"},
		{"model changed", func(t *testing.T, run string) { rewriteSHA(t, run, "0123456789abcdef") }, nil, 1, "changed since training"},
		{"other model that fits", func(t *testing.T, run string) { rewriteSHA(t, run, "0123456789abcdef") }, []string{"--model", f.model}, 0, "warning: the model"},
		{"other model that does not fit", nil, []string{"--model", other}, 1, "its 64 features do not fit the weights' 32 inputs"},
		{"finetune without block5", func(t *testing.T, run string) { rewriteMode(t, run, rundir.ModeFineTune) }, nil, 1, "has no block5 tensors"},
		{"size not a multiple", nil, []string{"--size", "40"}, 1, "not a multiple of 32"},
		{"bad interpolation", nil, []string{"--interpolation", "cubic"}, 2, "interpolation"},
		{"no output folder", nil, []string{"--out", filepath.Join(t.TempDir(), "missing", "c.onnx")}, 1, "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			copyDir(t, f.run, run)
			if tc.mutate != nil {
				tc.mutate(t, run)
			}
			args := append([]string{"export", "--run", run, "--out", out, "--threads", "1"}, tc.extra...)
			code, _, errs := runTlearn(t, args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s", code, tc.code, tc.want, errs)
			}
		})
	}
}

func rewriteSHA(t *testing.T, run, sha string) {
	rewriteRunInfo(t, run, func(info *rundir.Info) { info.ModelSHA256 = sha })
}

func rewriteMode(t *testing.T, run, mode string) {
	rewriteRunInfo(t, run, func(info *rundir.Info) { info.Mode = mode })
}

// rewriteRunInfo edits the common part of run/settings.json.
func rewriteRunInfo(t *testing.T, run string, edit func(*rundir.Info)) {
	t.Helper()
	info, err := rundir.ReadInfo(run)
	if err != nil {
		t.Fatal(err)
	}
	edit(info)
	if err := rundir.WriteJSON(filepath.Join(run, rundir.SettingsFile), info); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}
