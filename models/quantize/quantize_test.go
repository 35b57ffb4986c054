package quantize

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// testSize is the input side of these tests: small, and 4×4 maps.
const testSize = 64

// fixture is a prepared synthetic VGG16 and two image sets: one to
// calibrate on, one to compare features on.
type fixture struct {
	root, model, calib, test string
}

func newFixture(t *testing.T, keras bool) *fixture {
	t.Helper()
	ortlibtest.Init(t)
	root := t.TempDir()
	f := &fixture{root: root, model: filepath.Join(root, "model"), calib: filepath.Join(root, "calib"), test: filepath.Join(root, "test")}
	if _, err := models.WriteSynthPrepared(f.model, models.SynthSettings{Seed: 3, Width: 1.0 / 8, Keras: keras}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"a", "b"} {
		fixtures.ClassImages(t, f.calib, c, 8, uint64(10+i))
		fixtures.ClassImages(t, f.test, c, 8, uint64(20+i))
	}
	return f
}

func (f *fixture) quantize(t *testing.T, s Settings) (string, *models.Spec) {
	t.Helper()
	out := filepath.Join(f.root, "model8")
	s.Size, s.Threads = testSize, 1
	spec, err := Quantize(context.Background(), f.model, f.calib, out, s)
	if err != nil {
		t.Fatal(err)
	}
	return out, spec
}

// features runs the prepared model in dir on the images of data and
// returns its features, one row per image.
func features(t testing.TB, dir, data string, size int) [][]float32 {
	t.Helper()
	spec, err := models.ReadSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := models.ReadExtractor(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := dataset.NewLoader(src, nil, dataset.LoaderSettings{Size: size, Preprocessing: spec.Preprocessing, Batch: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	buf := make([]float32, l.BatchLen())
	var rows [][]float32
	for {
		bt, err := l.Next(context.Background(), buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		side := int64(size)
		shape := []int64{int64(bt.Count), 3, side, side}
		if spec.Preprocessing.Layout == dataset.NHWC {
			shape = []int64{int64(bt.Count), side, side, 3}
		}
		res, err := ortlib.Probe(context.Background(), b, []ortlib.Tensor{{Name: spec.Input, Shape: shape, Data: buf[:bt.Count*l.ImageLen()]}},
			[]string{models.FeaturesOutput, models.MapsOutput}, 1)
		if err != nil {
			t.Fatal(err)
		}
		d := spec.Features.Dim
		for i := range bt.Count {
			rows = append(rows, res[0].Data[i*d:(i+1)*d])
		}
	}
	return rows
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// TestFeaturesMatchFloat32 quantizes the synthetic VGG16 (torchvision and
// Keras layouts) and compares the int8 features with float32's on images
// not used for calibration: mean cosine ≥ 0.999.
func TestFeaturesMatchFloat32(t *testing.T) {
	for _, keras := range []bool{false, true} {
		name := "torchvision"
		if keras {
			name = "keras"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, keras)
			rec := &progress.Recorder{}
			out, spec := f.quantize(t, Settings{Images: 12, Seed: 5, Batch: 5, Progress: rec})
			if rec.Added != 12 {
				t.Errorf("progress counted %d images, want 12: %v", rec.Added, rec.Events)
			}
			q := spec.Quantization
			if q == nil || q.Scheme != models.SchemeInt8QDQ || q.Calibration.Images != 12 || q.Calibration.Seed != 5 ||
				q.Calibration.Size != testSize || len(q.Calibration.FilesSHA256) != 64 || q.FromSHA256 == "" || spec.DefaultSize != testSize {
				t.Errorf("spec records quantization %+v", q)
			}
			fp, qp := features(t, f.model, f.test, testSize), features(t, out, f.test, testSize)
			var sum float64
			for i := range fp {
				sum += cosine(fp[i], qp[i])
			}
			mean := sum / float64(len(fp))
			t.Logf("mean cosine int8 vs float32 over %d images: %.6f", len(fp), mean)
			if mean < 0.999 {
				t.Errorf("mean cosine %.6f, want >= 0.999", mean)
			}
		})
	}
}

// TestSpecAndBlock5 checks the written folder: a prepared model that
// models reads (sha256 checked), whose block5 float32 weights are the
// float32 model's, and whose graph runs block5 on int8 twins.
func TestSpecAndBlock5(t *testing.T) {
	f := newFixture(t, false)
	out, spec := f.quantize(t, Settings{Images: 4})
	back, err := models.ReadSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Int8() || back.ExtractorSHA256 != spec.ExtractorSHA256 {
		t.Fatalf("spec read back: %+v", back.Quantization)
	}
	fsha, err := models.ExtractorSHA256(f.model)
	if err != nil {
		t.Fatal(err)
	}
	if back.ExtractorSHA256 == fsha || back.Quantization.FromSHA256 != fsha {
		t.Errorf("int8 sha256 %s, float32 %s, recorded from %s", back.ExtractorSHA256, fsha, back.Quantization.FromSHA256)
	}
	want, err := models.ReadBlock5(f.model, spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.ReadBlock5(out, back)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !slicesEqual(want[i].Data, got[i].Data) {
			t.Errorf("block5 %s differs from the float32 model's", want[i].Name)
		}
	}
	m, err := models.Load(filepath.Join(out, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	uses := map[string]bool{}
	for _, n := range m.Graph.Node {
		ops[n.GetOpType()]++
		for _, in := range n.Input {
			uses[in] = true
		}
	}
	if ops["Conv"] != 13 || ops["DequantizeLinear"] < 13*2 {
		t.Errorf("ops %v", ops)
	}
	for k := range 3 {
		if uses[back.Block5.ConvWeights[k]] || !uses[back.Quantization.Block5Weights[k]] || !uses[back.Quantization.Block5Biases[k]] {
			t.Errorf("block5_conv%d: the graph should run the int8 twins %s, %s and not %s", k+1,
				back.Quantization.Block5Weights[k], back.Quantization.Block5Biases[k], back.Block5.ConvWeights[k])
		}
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// optimizedOps loads the model file under ONNX Runtime with graph
// optimisation level "all" and counts the op types of the optimised
// graph that ORT saves (SessionOptions' optimized-model file path).
func optimizedOps(t *testing.T, model string) map[string]int {
	t.Helper()
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	saved := filepath.Join(t.TempDir(), "optimized.onnx")
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		t.Fatal(err)
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if err := so.SetOptimizedModelFilePath(saved); err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewDynamicAdvancedSession(model, []string{"input"}, []string{models.FeaturesOutput}, so)
	if err != nil {
		// The input name only matters to Run; a wrong one still loads.
		t.Fatal(err)
	}
	sess.Destroy()
	m, err := models.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range m.Graph.Node {
		ops[n.GetOpType()]++
	}
	return ops
}

// TestORTFusesEveryConv: in the graph that ORT optimises, every Conv of
// the quantized extractor is a QLinearConv and every MaxPool runs on
// uint8. The controls break the fusion the way a careless change would
// and show that the check then fails: the first Conv's weight left
// float32. (A float32 bias, which the issue names as a breaker, no longer
// blocks the fusion under ORT 1.27: ORT quantizes it itself; the control
// logs what it does.)
func TestORTFusesEveryConv(t *testing.T) {
	f := newFixture(t, false)
	out, _ := f.quantize(t, Settings{Images: 4})
	path := filepath.Join(out, models.ExtractorFile)
	fused := func(ops map[string]int) bool {
		return ops["QLinearConv"] == 13 && ops["Conv"] == 0 && ops["FusedConv"] == 0 && ops["MaxPool"] == 0
	}
	ops := optimizedOps(t, path)
	t.Logf("optimised graph: %v", ops)
	if !fused(ops) {
		t.Errorf("the optimised graph has %d QLinearConv, %d Conv, %d FusedConv and %d float MaxPool; want 13 QLinearConv and none of the others",
			ops["QLinearConv"], ops["Conv"], ops["FusedConv"], ops["MaxPool"])
	}
	for _, tc := range []struct {
		desc   string
		input  int
		breaks bool
	}{
		{"float weight", 1, true},
		{"float bias", 2, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m, err := models.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			floatInput(t, m, tc.input)
			bpath := filepath.Join(t.TempDir(), "broken.onnx")
			if err := models.Save(bpath, m); err != nil {
				t.Fatal(err)
			}
			bops := optimizedOps(t, bpath)
			t.Logf("optimised graph: %v", bops)
			if tc.breaks && fused(bops) {
				t.Errorf("with a %s the check still passes (%v): it cannot tell a broken fusion", tc.desc, bops)
			}
		})
	}
}

// floatInput gives the graph's first Conv a float32 initializer (zeros)
// for its input j (1 weight, 2 bias) instead of the dequantized int8 or
// int32 one.
func floatInput(t *testing.T, m *onnxpb.ModelProto, j int) {
	t.Helper()
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range m.Graph.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() != "Conv" {
			continue
		}
		q, ok := models.Initializer(m, producer[n.Input[j]].Input[0])
		if !ok {
			t.Fatalf("the first Conv's input %d is not a DequantizeLinear of an initializer", j)
		}
		c, _ := onnxgraph.NumElements(q.Dims)
		name := onnxgraph.Unique(onnxgraph.Names(m.Graph), "float_input")
		m.Graph.Initializer = append(m.Graph.Initializer, models.NewTensorFloat32(name, q.Dims, make([]float32, c)))
		n.Input[j] = name
		return
	}
	t.Fatal("no Conv")
}

// TestBadInput: each bad input fails with its error and writes nothing.
func TestBadInput(t *testing.T) {
	f := newFixture(t, false)
	quantized, _ := f.quantize(t, Settings{Images: 2})
	empty := filepath.Join(f.root, "empty")
	noImages := filepath.Join(f.root, "noimages")
	for _, d := range []string{empty, filepath.Join(noImages, "a"), filepath.Join(noImages, "b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fixtures.WriteFile(t, filepath.Join(noImages, "a", "notes.txt"), []byte("not an image"))
	sigmoid := filepath.Join(f.root, "sigmoid")
	withOp(t, f.model, sigmoid, "Sigmoid")

	cases := []struct {
		desc, model, data string
		size              int
		is                error
		says              []string
	}{
		{"not a prepared model", f.calib, f.calib, 0, models.ErrNotPrepared, []string{"spec.json"}},
		{"quantized already", quantized, f.calib, 0, ErrQuantized, []string{filepath.Join(quantized, "spec.json"), "float32 model"}},
		{"no class folders", f.model, empty, 0, nil, []string{empty, "no class folders"}},
		{"class folders without images", f.model, noImages, 0, nil, []string{"no images"}},
		{"unsupported op", sigmoid, f.calib, 0, ErrUnsupported, []string{"Sigmoid", `"tlearn_test_op"`, filepath.Join(sigmoid, "extractor.onnx")}},
		{"a side the model does not take", f.model, f.calib, 40, nil, []string{"size 40 is not a multiple of 32", filepath.Join(f.model, "extractor.onnx")}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "missing", "out")
			_, err := Quantize(context.Background(), tc.model, tc.data, out, Settings{Size: cmp.Or(tc.size, testSize), Threads: 1})
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want one wrapping %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("wrote %v", ents)
			}
		})
	}
}

// withOp copies the prepared model src to dst with a node of op inserted
// after its first Relu (spec.json's sha256 updated: a well-formed
// prepared model that the quantizer cannot handle).
func withOp(t *testing.T, src, dst, op string) {
	t.Helper()
	m, err := models.Load(filepath.Join(src, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	for i, n := range g.Node {
		if n.GetOpType() != "Relu" {
			continue
		}
		out := n.Output[0] + "_op"
		for _, c := range g.Node[i+1:] {
			for j, in := range c.Input {
				if in == n.Output[0] {
					c.Input[j] = out
				}
			}
		}
		g.Node = append(g.Node[:i+1], append([]*onnxpb.NodeProto{onnxgraph.Node(op, "tlearn_test_op", []string{n.Output[0]}, []string{out})}, g.Node[i+1:]...)...)
		break
	}
	spec, err := models.ReadSpec(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := models.Save(filepath.Join(dst, models.ExtractorFile), m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	spec.ExtractorSHA256 = hex.EncodeToString(sum[:])
	if err := models.WriteSpec(dst, spec); err != nil {
		t.Fatal(err)
	}
}

// TestExistingOutput: an existing output is kept without Force; with
// Force only a prepared model folder is replaced.
func TestExistingOutput(t *testing.T) {
	f := newFixture(t, false)
	out, _ := f.quantize(t, Settings{Images: 2})
	_, err := Quantize(context.Background(), f.model, f.calib, out, Settings{Images: 2, Size: testSize, Threads: 1})
	if !errors.Is(err, ErrExists) {
		t.Errorf("second run: %v, want ErrExists", err)
	}
	if _, err := Quantize(context.Background(), f.model, f.calib, out, Settings{Images: 3, Size: testSize, Threads: 1, Force: true}); err != nil {
		t.Errorf("--force over a prepared model: %v", err)
	}
	if s, err := models.ReadSpec(out); err != nil || s.Quantization.Calibration.Images != 3 {
		t.Errorf("after force: %v", err)
	}
	foreign := filepath.Join(f.root, "foreign")
	fixtures.WriteFile(t, filepath.Join(foreign, "keep.txt"), []byte("mine"))
	_, err = Quantize(context.Background(), f.model, f.calib, foreign, Settings{Images: 2, Size: testSize, Threads: 1, Force: true})
	if !errors.Is(err, fsutil.ErrForeign) {
		t.Errorf("force over a foreign folder: %v, want ErrForeign", err)
	}
}

// TestCancelWritesNothing: a cancelled calibration leaves no output.
func TestCancelWritesNothing(t *testing.T) {
	f := newFixture(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Quantize(ctx, f.model, f.calib, out, Settings{Size: testSize, Threads: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Errorf("wrote %v", ents)
	}
}

// TestExportFineTunedBlock5: a classifier built on the int8 extractor
// with fine-tuned block5 weights runs those weights (in float32), not the
// int8 twins of the original ones. With block5 set to zeros, the features
// are zeros and every image gets softmax(output bias).
func TestExportFineTunedBlock5(t *testing.T) {
	f := newFixture(t, false)
	out, spec := f.quantize(t, Settings{Images: 4})
	m, err := models.Load(filepath.Join(out, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	c := spec.Block5.Channels
	var b5 classifier.Block5Params
	for k := range 3 {
		b5.ConvWeights[k], b5.ConvBiases[k] = make([]float32, c*c*9), make([]float32, c)
	}
	d := spec.Features.Dim
	w := classifier.Weights{Output: classifier.Dense{In: d, Out: 2, Kernel: make([]float32, d*2), Bias: []float32{0.5, -0.5}}, Block5: &b5}
	for i := range w.Output.Kernel {
		w.Output.Kernel[i] = float32(i%7) - 3
	}
	clf, err := classifier.Build(context.Background(), spec, m, w, classifier.Settings{Classes: []string{"a", "b"}, Size: testSize, SkipCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if meta := metadata(clf)[classifier.MetaQuantization]; meta != models.SchemeInt8QDQ {
		t.Errorf("metadata %s = %q, want %q", classifier.MetaQuantization, meta, models.SchemeInt8QDQ)
	}
	b, err := models.Marshal(clf)
	if err != nil {
		t.Fatal(err)
	}
	pixels := make([]uint8, 2*testSize*testSize*3)
	for i := range pixels {
		pixels[i] = uint8(i * 7)
	}
	res, err := ortlib.Probe(context.Background(), b, []ortlib.Tensor{{Name: classifier.Input, Shape: []int64{2, testSize, testSize, 3}, Data: pixels}},
		[]string{classifier.Output}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := float32(1 / (1 + math.Exp(-1))) // softmax(0.5, -0.5)[0]
	for i := range 2 {
		if got := res[0].Data[2*i]; math.Abs(float64(got-want)) > 1e-5 {
			t.Errorf("image %d: p(a) = %v, want %v: block5 did not run the fine-tuned (zero) weights", i, got, want)
		}
	}
}

func metadata(m *onnxpb.ModelProto) map[string]string {
	kv := map[string]string{}
	for _, p := range m.MetadataProps {
		kv[p.GetKey()] = p.GetValue()
	}
	return kv
}

// TestSampleSeeded: the calibration sample is a function of the seed.
func TestSampleSeeded(t *testing.T) {
	f := newFixture(t, false)
	draw := func(seed uint64) ([]int, string) {
		src, idx, sum, err := sample(context.Background(), f.calib, Settings{Images: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
		return idx, sum
	}
	i1, s1 := draw(1)
	i1b, s1b := draw(1)
	_, s2 := draw(2)
	if len(i1) != 4 || s1 != s1b || fmt.Sprint(i1) != fmt.Sprint(i1b) {
		t.Errorf("seed 1 drew %v (%s) then %v (%s)", i1, s1, i1b, s1b)
	}
	if s1 == s2 {
		t.Errorf("seeds 1 and 2 drew the same images")
	}
	if _, idx, _, _ := sample(context.Background(), f.calib, Settings{Images: 1000}); len(idx) != 16 {
		t.Errorf("1000 asked of 16 images: drew %d", len(idx))
	}
}
