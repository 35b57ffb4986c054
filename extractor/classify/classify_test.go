package classify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/extractor/internal/extractortest"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

func TestMain(m *testing.M) {
	code := m.Run()
	extractortest.RemoveTinyModel()
	os.Exit(code)
}

// testHead is a seeded softmax-regression head on d features, scaled so
// that its probabilities are far from 0 and 1 on the tiny model's features.
func testHead(d, k int, scale float64) classifier.Weights {
	rng := rand.New(rand.NewPCG(3, 3))
	w := classifier.Weights{Output: classifier.Dense{In: d, Out: k, Kernel: make([]float32, d*k), Bias: make([]float32, k)}}
	for i := range w.Output.Kernel {
		w.Output.Kernel[i] = float32(rng.NormFloat64() * scale / math.Sqrt(float64(d)))
	}
	return w
}

// headForward is the head in float64 with a softmax.
func headForward(x []float32, w classifier.Weights) []float32 {
	d := w.Output
	z := make([]float64, d.Out)
	for o := range z {
		s := float64(d.Bias[o])
		for i, v := range x {
			s += float64(v) * float64(d.Kernel[i*d.Out+o])
		}
		z[o] = s
	}
	mx := slices.Max(z)
	var sum float64
	for _, v := range z {
		sum += math.Exp(v - mx)
	}
	p := make([]float32, len(z))
	for i, v := range z {
		p[i] = float32(math.Exp(v-mx) / sum)
	}
	return p
}

// writeClassifier exports the tiny model with w into dir/classifier.onnx.
func writeClassifier(t testing.TB, w classifier.Weights, classes []string) string {
	t.Helper()
	model := extractortest.TinyModel(t)
	spec, err := models.ReadSpec(model)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(model, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := classifier.Build(context.Background(), spec, ext, w, classifier.Settings{Classes: classes, Size: extractortest.Size, SkipCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "classifier.onnx")
	if err := models.Save(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// extractCache extracts the features of the images of data with the tiny
// model into a new cache and returns its folder: the reference that
// classification must match.
func extractCache(t testing.TB, data string) string {
	t.Helper()
	e, err := extractor.Open(extractortest.TinyModel(t), extractor.Options{
		Size: extractortest.Size, Batch: 3, ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := e.Extract(context.Background(), src, nil, dir, extractor.Settings{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openClassifier(t testing.TB, path string, o Options) *Classifier {
	t.Helper()
	o.ORT = ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}
	c, err := Open(path, o)
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

// classifyAll collects Classify's predictions (copies of the probabilities).
func classifyAll(t testing.TB, c *Classifier, src *dataset.Source) []Prediction {
	t.Helper()
	var got []Prediction
	err := c.Classify(context.Background(), src, func(p Prediction) error {
		p.Probs = slices.Clone(p.Probs)
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestClassifyMatchesCache classifies a dataset with a bad image in it at
// several batch sizes and compares with the cached-feature path: Extract's
// features fed to the same head in Go.
func TestClassifyMatchesCache(t *testing.T) {
	t.Parallel()
	classes := []string{"cat", "dog"}
	data := extractortest.MakeDataset(t, classes, 5)
	cacheDir := extractCache(t, data)
	cc, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	w := testHead(cc.Manifest.FeatureDim, len(classes), 1)
	path := writeClassifier(t, w, classes)
	want := map[string][]float32{}
	for i, it := range cc.Manifest.Items {
		want[filepath.Join(data, filepath.FromSlash(it.Path))] = headForward(cc.Feature(i), w)
	}

	bad := filepath.Join(data, "dog", "002.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := dataset.OpenFiles([]string{data}, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 4, 16} {
		c := openClassifier(t, path, Options{Batch: batch})
		got := classifyAll(t, c, src)
		if len(got) != len(src.Items) {
			t.Fatalf("batch %d: %d predictions for %d images", batch, len(got), len(src.Items))
		}
		informative := 0
		for i, p := range got {
			path := src.Path(p.Index)
			switch {
			case p.Index != i:
				t.Fatalf("batch %d: prediction %d is for image %d", batch, i, p.Index)
			case path == bad:
				if p.Err == nil || p.Probs != nil || p.Err.Path != bad {
					t.Fatalf("batch %d: bad image gave %+v", batch, p)
				}
				continue
			case p.Err != nil:
				t.Fatalf("batch %d: %v", batch, p.Err)
			}
			for j, v := range p.Probs {
				if !tol.Close(float64(v), float64(want[path][j]), 1e-4, 0) {
					t.Fatalf("batch %d: %s: probabilities %v, cached path gives %v", batch, path, p.Probs, want[path])
				}
				if v > 0.05 && v < 0.95 {
					informative++
				}
			}
		}
		if informative < len(got)/2 {
			t.Fatalf("batch %d: probabilities too close to 0 and 1 to test anything: %+v", batch, got)
		}
	}
}

func TestClassifyCancel(t *testing.T) {
	t.Parallel()
	extractortest.TinyModel(t)
	path := writeClassifier(t, testHead(32, 2, 1), []string{"a", "b"})
	c := openClassifier(t, path, Options{Batch: 2})
	src, err := dataset.OpenFiles([]string{extractortest.MakeDataset(t, []string{"a", "b"}, 3)}, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	err = c.Classify(context.Background(), src, func(Prediction) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("callback error: %v after %d predictions", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Classify(ctx, src, func(Prediction) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// The classifier stays usable.
	if got := classifyAll(t, c, src); len(got) != len(src.Items) {
		t.Fatalf("%d predictions after a cancel", len(got))
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	model := extractortest.TinyModel(t)
	good := writeClassifier(t, testHead(32, 2, 1), []string{"a", "b"})
	garbage := filepath.Join(t.TempDir(), "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("not a model at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(model, models.ExtractorFile)
	cases := []struct {
		desc string
		path string
		o    Options
		is   error
		want string
	}{
		{"plain ONNX model", ext, Options{}, classifier.ErrNotClassifier, ext + ": classifier: not a tlearn classifier"},
		{"not ONNX", garbage, Options{}, models.ErrNotONNX, garbage},
		{"missing", garbage + ".missing", Options{}, os.ErrNotExist, "garbage.onnx.missing"},
		{"size", good, Options{Size: 40}, nil, "not a multiple of 32"},
		{"interpolation", good, Options{Interpolation: "cubic"}, nil, "interpolation"},
		{"batch", good, Options{Batch: -1}, nil, "batch -1"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Open(tc.path, tc.o)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v, want %q (%v)", err, tc.want, tc.is)
			}
		})
	}
	c := openClassifier(t, good, Options{Size: 64, Interpolation: dataset.Bilinear})
	if c.Size() != 64 || c.Interpolation() != dataset.Bilinear || c.Batch() != DefaultBatch || !slices.Equal(c.Classes(), []string{"a", "b"}) {
		t.Fatalf("size %d interpolation %s batch %d classes %v", c.Size(), c.Interpolation(), c.Batch(), c.Classes())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClassFolderLabels(t *testing.T) {
	t.Parallel()
	root := filepath.Join("photos", "set")
	classes := []string{"cat", "dog", "bird"}
	cases := []struct {
		desc  string
		paths []string
		want  []int
	}{
		{"class tree", []string{"cat/1.png", "cat/deep/2.png", "dog/3.png"}, []int{0, 0, 1}},
		{"one class present", []string{"bird/1.png"}, []int{2}},
		{"unknown folder", []string{"cat/1.png", "fish/2.png"}, nil},
		{"loose image", []string{"cat/1.png", "3.png"}, nil},
		{"no images", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			src := &dataset.Source{}
			for _, p := range tc.paths {
				src.Items = append(src.Items, dataset.Item{Path: filepath.ToSlash(filepath.Join(root, p)), Label: -1})
			}
			if got := ClassFolderLabels(root, src, classes); !slices.Equal(got, tc.want) {
				t.Fatalf("labels %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopK(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc  string
		probs []float32
		k     int
		want  []int
	}{
		{"sorted", []float32{0.1, 0.6, 0.3}, 2, []int{1, 2}},
		{"all", []float32{0.1, 0.6, 0.3}, 3, []int{1, 2, 0}},
		{"capped", []float32{0.4, 0.6}, 5, []int{1, 0}},
		{"ties keep index order", []float32{0.25, 0.25, 0.25, 0.25}, 3, []int{0, 1, 2}},
		{"top 1", []float32{0.2, 0.3, 0.5}, 1, []int{2}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if got := TopK(make([]int, 0, 8), tc.probs, tc.k); !slices.Equal(got, tc.want) {
				t.Fatalf("TopK = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOpenRefusesFIFO checks that a classifier path naming a named pipe is
// refused up front, where reading it would block until a writer comes.
func TestOpenRefusesFIFO(t *testing.T) {
	fifo := fixtures.FIFO(t, filepath.Join(t.TempDir(), "classifier.onnx"))
	var err error
	fixtures.Within(t, 20*time.Second, func() { fixtures.UnblockFIFO(fifo) }, func() { _, err = Open(fifo, Options{}) })
	if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("err = %v, want one naming %s as a FIFO", err, fifo)
	}
}
