package classifier

import (
	"bytes"
	"context"
	"errors"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// randomDense is a layer with seeded weights large enough that the
// softmax of the test heads is far from uniform.
func randomDense(rng *rand.Rand, in, out int) *Dense {
	d := &Dense{In: in, Out: out, Kernel: make([]float32, in*out), Bias: make([]float32, out)}
	scale := 2 / math.Sqrt(float64(in))
	for i := range d.Kernel {
		d.Kernel[i] = float32(rng.NormFloat64() * scale)
	}
	for i := range d.Bias {
		d.Bias[i] = float32(rng.NormFloat64() * 0.1)
	}
	return d
}

func randomHead(rng *rand.Rand, d, hidden, k int) Weights {
	var w Weights
	in := d
	if hidden > 0 {
		w.Hidden = randomDense(rng, d, hidden)
		in = hidden
	}
	w.Output = *randomDense(rng, in, k)
	return w
}

// perturbedBlock5 returns block5's parameters of ext, each scaled and
// shifted by seeded noise: values a fine-tuning could have reached.
func perturbedBlock5(t *testing.T, rng *rand.Rand, ext *onnxpb.ModelProto, spec *models.Spec) *Block5Params {
	t.Helper()
	p := &Block5Params{}
	for k := range 3 {
		for j, name := range []string{spec.Block5.ConvWeights[k], spec.Block5.ConvBiases[k]} {
			tp, ok := models.Initializer(ext, name)
			if !ok {
				t.Fatalf("no initializer %s", name)
			}
			v, _, err := models.TensorFloat32(tp)
			if err != nil {
				t.Fatal(err)
			}
			for i := range v {
				v[i] = v[i]*float32(0.5+rng.Float64()) + float32(rng.NormFloat64()*0.05)
			}
			if j == 0 {
				p.ConvWeights[k] = v
			} else {
				p.ConvBiases[k] = v
			}
		}
	}
	return p
}

// withBlock5 is ext with block5's initializers holding p.
func withBlock5(t *testing.T, ext *onnxpb.ModelProto, spec *models.Spec, p *Block5Params) *onnxpb.ModelProto {
	t.Helper()
	m := proto.Clone(ext).(*onnxpb.ModelProto)
	for k := range 3 {
		for i, tp := range m.Graph.Initializer {
			switch tp.GetName() {
			case spec.Block5.ConvWeights[k]:
				m.Graph.Initializer[i] = models.NewTensorFloat32(tp.GetName(), tp.Dims, p.ConvWeights[k])
			case spec.Block5.ConvBiases[k]:
				m.Graph.Initializer[i] = models.NewTensorFloat32(tp.GetName(), tp.Dims, p.ConvBiases[k])
			}
		}
	}
	return m
}

// randomPixels makes n seeded side×side RGB images, uint8 NHWC, with
// smooth structure and noise.
func randomPixels(rng *rand.Rand, n, side int) []uint8 {
	pix := make([]uint8, n*side*side*3)
	for i := range n {
		var base [3]float64
		for c := range base {
			base[c] = rng.Float64() * 255
		}
		for y := range side {
			for x := range side {
				for c := range 3 {
					v := base[c] + 60*math.Sin(float64(x*(c+1)+y)/4) + rng.NormFloat64()*25
					pix[((i*side+y)*side+x)*3+c] = uint8(max(0, min(255, v)))
				}
			}
		}
	}
	return pix
}

// referenceFeatures is the first half of the cached-feature path: Go
// preprocessing (dataset.Preprocess), then the extractor under ORT.
func referenceFeatures(t *testing.T, ext *onnxpb.ModelProto, spec *models.Spec, pix []uint8, n, side int) []float32 {
	t.Helper()
	x := make([]float32, len(pix))
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, side, side))
		for p := range side * side {
			copy(img.Pix[4*p:4*p+3], pix[(i*side*side+p)*3:][:3])
			img.Pix[4*p+3] = 255
		}
		dataset.Preprocess(x, i, img, spec.Preprocessing)
	}
	b, err := models.Marshal(ext)
	if err != nil {
		t.Fatal(err)
	}
	return runFloat32(t, b, spec.Input, imageShape(spec.Preprocessing.Layout, int64(n), int64(side)), x, models.FeaturesOutput)
}

// headProbs is the second half: the head in float64 and a softmax.
func headProbs(feats []float32, w Weights) []float32 {
	d := w.Output.In
	if w.Hidden != nil {
		d = w.Hidden.In
	}
	n, k := len(feats)/d, w.Output.Out
	out := make([]float32, n*k)
	for i := range n {
		h := make([]float64, d)
		for j, v := range feats[i*d : (i+1)*d] {
			h[j] = float64(v)
		}
		if w.Hidden != nil {
			h = denseF64(h, w.Hidden)
			for j := range h {
				h[j] = max(h[j], 0)
			}
		}
		z := denseF64(h, &w.Output)
		mx := slices.Max(z)
		var s float64
		for _, v := range z {
			s += math.Exp(v - mx)
		}
		for j, v := range z {
			out[i*k+j] = float32(math.Exp(v-mx) / s)
		}
	}
	return out
}

// scaleFirstLayer divides the head's first kernel by the features' RMS,
// so that the logits are O(1) whatever the backbone's scale: a saturated
// softmax would hide differences in the features.
func scaleFirstLayer(w Weights, feats []float32) {
	var ss float64
	for _, v := range feats {
		ss += float64(v) * float64(v)
	}
	rms := math.Sqrt(ss / float64(len(feats)))
	first := &w.Output
	if w.Hidden != nil {
		first = w.Hidden
	}
	for i := range first.Kernel {
		first.Kernel[i] = float32(float64(first.Kernel[i]) / rms)
	}
}

// informative reports whether enough probabilities are away from 0 and 1
// for a comparison at 1e-4 to detect wrong features.
func informative(p []float32, n int) bool {
	mid := 0
	for _, v := range p {
		if v > 0.01 && v < 0.99 {
			mid++
		}
	}
	return mid >= n
}

func denseF64(x []float64, d *Dense) []float64 {
	y := make([]float64, d.Out)
	for o := range y {
		s := float64(d.Bias[o])
		for i, v := range x {
			s += v * float64(d.Kernel[i*d.Out+o])
		}
		y[o] = s
	}
	return y
}

// runFloat32 runs model once on one float32 input and returns one float32
// output.
func runFloat32(t *testing.T, model []byte, input string, shape []int64, data []float32, output string) []float32 {
	t.Helper()
	res, err := ortlib.Probe(context.Background(), model, []ortlib.Tensor{{Name: input, Shape: shape, Data: data}}, []string{output}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Data
}

// tinyWidth is TinyVGG's width: channels 4, 8, 16, 32, 32.
const tinyWidth = 1.0 / 16

func imageShape(layout dataset.Layout, batch, side int64) []int64 {
	if layout == dataset.NHWC {
		return []int64{batch, side, side, 3}
	}
	return []int64{batch, 3, side, side}
}

// TestBuildMatchesCachedPath runs exported classifiers on uint8 pixels
// and compares them with the extractor's features fed to the same head,
// for both presets, with and without a hidden layer and fine-tuned block5.
func TestBuildMatchesCachedPath(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	classes := []string{"cat", "dog", "bird"}
	cases := []struct {
		desc     string
		synth    models.SynthSettings
		hidden   int
		finetune bool
		side     int
	}{
		{"torchvision head", models.SynthSettings{Seed: 21, Width: tinyWidth}, 7, false, 32},
		{"torchvision no hidden at 64", models.SynthSettings{Seed: 22, Width: tinyWidth}, 0, false, 64},
		{"torchvision finetune", models.SynthSettings{Seed: 23, Width: tinyWidth}, 5, true, 32},
		{"keras head", models.SynthSettings{Seed: 24, Width: tinyWidth, Keras: true}, 6, false, 32},
		{"keras finetune at 64", models.SynthSettings{Seed: 25, Width: tinyWidth, Keras: true}, 4, true, 64},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			spec, err := models.WriteSynthPrepared(dir, tc.synth)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := models.Load(filepath.Join(dir, models.ExtractorFile))
			if err != nil {
				t.Fatal(err)
			}
			before, _ := models.Marshal(ext)
			rng := rand.New(rand.NewPCG(uint64(tc.synth.Seed), 5))
			w := randomHead(rng, spec.Features.Dim, tc.hidden, len(classes))
			const n = 3
			pix := randomPixels(rng, n, tc.side)
			refModel := ext
			if tc.finetune {
				w.Block5 = perturbedBlock5(t, rng, ext, spec)
				refModel = withBlock5(t, ext, spec, w.Block5)
			}
			feats := referenceFeatures(t, refModel, spec, pix, n, tc.side)
			scaleFirstLayer(w, feats)
			m, err := Build(context.Background(), spec, ext, w, Settings{Classes: classes, Size: 32, Interpolation: dataset.Bilinear, ExtractorSHA256: "feed"})
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := models.Marshal(ext); !bytes.Equal(before, after) {
				t.Fatal("Build modified the extractor")
			}
			checkClassifierGraph(t, m, w)

			b, err := models.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			res, err := ortlib.Probe(context.Background(), b, []ortlib.Tensor{{Name: Input, Shape: []int64{n, int64(tc.side), int64(tc.side), 3}, Data: pix}}, []string{Output}, 1)
			if err != nil {
				t.Fatal(err)
			}
			got, shape := res[0].Data, res[0].Shape
			if !slices.Equal(shape, []int64{n, int64(len(classes))}) {
				t.Fatalf("output shape %v", shape)
			}
			want := headProbs(feats, w)
			if err := tol.Floats(got, want, 1e-4, 1e-4); err != nil {
				t.Fatalf("probabilities: %v", err)
			}
			if !informative(want, n) {
				t.Fatalf("probabilities %v are too close to 0 and 1 to test anything", want)
			}
			if tc.finetune {
				// The fine-tuned values must matter: the prepared block5
				// gives other probabilities.
				frozen := headProbs(referenceFeatures(t, ext, spec, pix, n, tc.side), w)
				if tol.Floats(got, frozen, 1e-3, 0) == nil {
					t.Fatalf("fine-tuned classifier gives the frozen model's probabilities %v", frozen)
				}
			}
		})
	}
}

// checkClassifierGraph checks the contract of the exported file beyond its
// values.
func checkClassifierGraph(t *testing.T, m *onnxpb.ModelProto, w Weights) {
	t.Helper()
	g := m.Graph
	if len(g.Input) != 1 || len(g.Output) != 1 || g.Output[0].GetName() != Output {
		t.Fatalf("inputs %v outputs %v", g.Input, g.Output)
	}
	elem, dims, _ := onnxgraph.Shape(g.Input[0])
	if elem != onnxpb.TensorProto_UINT8 || len(dims) != 4 || dims[1].Param == "" || dims[2].Param == "" || dims[3].Value != 3 {
		t.Fatalf("input %s %v", elem, dims)
	}
	ops := map[string]int{}
	for _, n := range g.Node {
		ops[n.GetOpType()]++
		for _, o := range n.Output {
			if o == models.MapsOutput {
				t.Fatal("the maps branch is still there")
			}
		}
	}
	if ops["Dropout"] != 0 || ops["Softmax"] != 1 || ops["Cast"] != 1 {
		t.Fatalf("ops %v", ops)
	}
	wantGemm := 1
	if w.Hidden != nil {
		wantGemm = 2
	}
	if ops["Gemm"] != wantGemm {
		t.Fatalf("%d Gemm nodes, want %d", ops["Gemm"], wantGemm)
	}
	info, err := ReadInfo(m)
	if err != nil {
		t.Fatal(err)
	}
	mode := ModeHead
	if w.Block5 != nil {
		mode = ModeFinetune
	}
	if info.Size != 32 || info.Interpolation != dataset.Bilinear || info.Mode != mode || info.SourceSHA256 != "feed" ||
		info.SizeMultiple != 32 || info.Preprocessing.Validate() != nil || len(info.Classes) != w.Output.Out {
		t.Fatalf("info %+v", info)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec, err := models.WriteTinyPrepared(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(dir, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	d := spec.Features.Dim
	classes := []string{"a", "b"}
	rng := rand.New(rand.NewPCG(1, 2))
	good := func() Weights { return randomHead(rng, d, 4, 2) }
	custom := *spec
	custom.Block5, custom.Maps, custom.Preset = nil, nil, models.PresetCustom
	old := proto.Clone(ext).(*onnxpb.ModelProto)
	old.OpsetImport[0].Version = proto.Int64(6)
	cases := []struct {
		desc     string
		spec     *models.Spec
		ext      *onnxpb.ModelProto
		w        func() Weights
		s        Settings
		want     string
		mismatch bool
	}{
		{"hidden takes other features", spec, ext, func() Weights { return randomHead(rng, d+1, 4, 2) }, Settings{Classes: classes}, "hidden layer takes 33 features but the model's features have 32", true},
		{"no hidden, other features", spec, ext, func() Weights { return randomHead(rng, d*2, 0, 2) }, Settings{Classes: classes}, "output layer takes 64 features", true},
		{"class count", spec, ext, good, Settings{Classes: []string{"a", "b", "c"}}, "2 units but there are 3 classes", true},
		{"no classes", spec, ext, good, Settings{}, "no class names", false},
		{"empty class name", spec, ext, good, Settings{Classes: []string{"a", ""}}, "class 1 has an empty name", false},
		{"short kernel", spec, ext, func() Weights {
			w := good()
			w.Hidden.Kernel = w.Hidden.Kernel[1:]
			return w
		}, Settings{Classes: classes}, "hidden kernel has 127 values", true},
		{"block5 on a custom backbone", &custom, ext, func() Weights {
			w := good()
			w.Block5 = &Block5Params{}
			return w
		}, Settings{Classes: classes}, "no block5", true},
		{"block5 of another width", spec, ext, func() Weights {
			w := good()
			w.Block5 = perturbedBlock5(t, rng, ext, spec)
			w.Block5.ConvWeights[1] = w.Block5.ConvWeights[1][:9]
			return w
		}, Settings{Classes: classes}, "block5_conv2 has 9 fine-tuned values", true},
		{"size not a multiple", spec, ext, good, Settings{Classes: classes, Size: 48}, "not a multiple of 32", false},
		{"unknown interpolation", spec, ext, good, Settings{Classes: classes, Interpolation: "cubic"}, "interpolation", false},
		{"old opset", spec, old, good, Settings{Classes: classes}, "opset 6", false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			tc.s.SkipCheck = true
			_, err := Build(context.Background(), tc.spec, tc.ext, tc.w(), tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "classifier: ") {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, ErrWeightsMismatch) != tc.mismatch {
				t.Fatalf("errors.Is(%v, ErrWeightsMismatch) = %v", err, !tc.mismatch)
			}
		})
	}
}

// TestBuildCheckRun covers the check run: it needs ONNX Runtime, and it
// passes on a good classifier.
func TestBuildCheckRun(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	dir := t.TempDir()
	spec, err := models.WriteTinyPrepared(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(dir, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	w := randomHead(rand.New(rand.NewPCG(4, 4)), spec.Features.Dim, 0, 2)
	if _, err := Build(context.Background(), spec, ext, w, Settings{Classes: []string{"x", "y"}, Size: 64, Threads: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestReadInfoErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec, err := models.WriteTinyPrepared(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := models.Load(filepath.Join(dir, models.ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	w := randomHead(rand.New(rand.NewPCG(5, 5)), spec.Features.Dim, 3, 2)
	good, err := Build(context.Background(), spec, ext, w, Settings{Classes: []string{"x", "y"}, SkipCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInfo(ext); !errors.Is(err, ErrNotClassifier) {
		t.Fatalf("extractor: %v, want ErrNotClassifier", err)
	}
	setMeta := func(key, value string) func(*onnxpb.ModelProto) {
		return func(m *onnxpb.ModelProto) {
			for _, p := range m.MetadataProps {
				if p.GetKey() == key {
					p.Value = proto.String(value)
				}
			}
		}
	}
	cases := []struct {
		desc   string
		mutate func(*onnxpb.ModelProto)
		want   string
	}{
		{"format", setMeta(MetaFormat, "2"), MetaFormat},
		{"classes not JSON", setMeta(MetaClasses, "x,y"), MetaClasses},
		{"no classes", setMeta(MetaClasses, "[]"), MetaClasses},
		{"size", setMeta(MetaSize, "-3"), MetaSize},
		{"size not a multiple", setMeta(MetaSize, "33"), "not a multiple of 32"},
		{"interpolation", setMeta(MetaInterpolation, "cubic"), MetaInterpolation},
		{"layout", setMeta(MetaInputLayout, "NCHW float"), MetaInputLayout},
		{"input type", func(m *onnxpb.ModelProto) {
			m.Graph.Input[0] = onnxgraph.ValueInfo(Input, onnxpb.TensorProto_FLOAT, []any{"N", "H", "W", 3})
		}, "want uint8 [N,H,W,3]"},
		{"output classes", func(m *onnxpb.ModelProto) {
			m.Graph.Output[0] = onnxgraph.ValueInfo(Output, onnxpb.TensorProto_FLOAT, []any{"N", 5})
		}, "want float [N,2]"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			m := proto.Clone(good).(*onnxpb.ModelProto)
			tc.mutate(m)
			_, err := ReadInfo(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzReadInfo feeds arbitrary metadata values (they come from
// files tlearn did not necessarily write) to the reader.
func FuzzReadInfo(f *testing.F) {
	f.Add(`["cat","dog"]`, "224", "32", "", "nearest", `{"channel_order":"RGB","layout":"NCHW","scale":1,"mean":[0,0,0],"std":[1,1,1]}`)
	f.Add(`["a"]`, "64", "", "64", "lanczos3", `{}`)
	f.Add(`[""]`, "0", "x", "-1", "?", `[`)
	f.Fuzz(func(t *testing.T, classes, size, multiple, fixed, interp, pre string) {
		m := &onnxpb.ModelProto{Graph: &onnxpb.GraphProto{
			Input:  []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(Input, onnxpb.TensorProto_UINT8, []any{"N", "H", "W", 3})},
			Output: []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(Output, onnxpb.TensorProto_FLOAT, []any{"N", nil})},
		}}
		for _, kv := range [][2]string{{MetaFormat, "1"}, {MetaClasses, classes}, {MetaSize, size}, {MetaSizeMultiple, multiple},
			{MetaFixedSize, fixed}, {MetaInterpolation, interp}, {MetaPreprocessing, pre}, {MetaInputLayout, InputLayout}} {
			m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(kv[0]), Value: proto.String(kv[1])})
		}
		info, err := ReadInfo(m)
		if err != nil {
			return
		}
		if len(info.Classes) == 0 || info.CheckSize(info.Size) != nil {
			t.Fatalf("accepted %+v", info)
		}
	})
}
