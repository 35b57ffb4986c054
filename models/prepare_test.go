package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// runWith runs m on probe's deterministic input of shape and returns the
// named values; names that are not graph outputs are exposed as extra
// outputs first, so intermediate tensors of an uncut model can be read.
func runWith(t *testing.T, m *onnxpb.ModelProto, input string, shape []int64, names ...string) []ortlib.ProbeOutput {
	t.Helper()
	m = proto.Clone(m).(*onnxpb.ModelProto)
	for _, n := range names {
		if !slices.ContainsFunc(m.Graph.Output, func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == n }) {
			m.Graph.Output = append(m.Graph.Output, &onnxpb.ValueInfoProto{Name: proto.String(n)})
		}
	}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := probe(context.Background(), b, input, shape, names, 1)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// gap averages an NCHW tensor over H and W.
func gap(x ortlib.ProbeOutput) []float32 {
	n, c, hw := int(x.Shape[0]), int(x.Shape[1]), int(x.Shape[2]*x.Shape[3])
	out := make([]float32, n*c)
	for i := range out {
		var s float64
		for _, v := range x.Data[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		out[i] = float32(s / float64(hw))
	}
	return out
}

func imageShape(layout dataset.Layout, batch, side int64) []int64 {
	if layout == dataset.NHWC {
		return []int64{batch, side, side, 3}
	}
	return []int64{batch, 3, side, side}
}

// TestPrepareMatchesUncut checks that the extractor's outputs equal the
// uncut model's block5_pool (pooled) and block4_pool tensors under ORT.
func TestPrepareMatchesUncut(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	cases := []struct {
		desc   string
		s      SynthSettings
		batch  int64
		side   int64
		preset string
		mutate func(*onnxpb.ModelProto)
	}{
		{"torchvision 32", SynthSettings{Seed: 11, Width: tinyWidth}, 2, 32, PresetTorchvision, nil},
		{"torchvision 64", SynthSettings{Seed: 12, Width: tinyWidth}, 2, 64, PresetTorchvision, nil},
		{"torchvision full at 32", SynthSettings{Seed: 13, Width: tinyWidth, Classifier: true, Size: 32}, 2, 32, PresetTorchvision, nil},
		{"keras 64", SynthSettings{Seed: 14, Width: tinyWidth, Keras: true}, 2, 64, PresetKeras, nil},
		{"keras full at 64", SynthSettings{Seed: 15, Width: tinyWidth, Keras: true, Classifier: true, Size: 64}, 2, 64, PresetKeras, nil},
		{"zoo fixed 1x3x32x32", SynthSettings{Seed: 16, Width: tinyWidth, Zoo: true, Size: 32}, 1, 32, PresetTorchvision, nil},
		{"source tensors named features and maps", SynthSettings{Seed: 17, Width: tinyWidth}, 2, 32, PresetTorchvision, func(m *onnxpb.ModelProto) {
			renameValue(m.Graph, "block5_pool", FeaturesOutput)
			renameValue(m.Graph, "input", MapsOutput)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			src := SynthVGG16(tc.s)
			if tc.mutate != nil {
				tc.mutate(src)
			}
			dir := t.TempDir()
			spec, err := prepareModel(context.Background(), src, SourceSpec{Path: "synth"}, PrepareSettings{}, dir)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Preset != tc.preset {
				t.Fatalf("preset %s, want %s", spec.Preset, tc.preset)
			}
			ext, err := Load(filepath.Join(dir, ExtractorFile))
			if err != nil {
				t.Fatal(err)
			}
			checkExtractorGraph(t, src, ext, spec)
			shape := imageShape(spec.Preprocessing.Layout, tc.batch, tc.side)
			want := runWith(t, src, src.Graph.Input[0].GetName(), shape, spec.Features.Tensor, spec.Maps.Tensor)
			got := runWith(t, ext, spec.Input, shape, FeaturesOutput, MapsOutput)
			c4, m := int64(spec.Maps.Channels), tc.side/16
			if !slices.Equal(got[0].Shape, []int64{tc.batch, int64(spec.Features.Dim)}) || !slices.Equal(got[1].Shape, []int64{tc.batch, c4, m, m}) {
				t.Fatalf("shapes %v %v", got[0].Shape, got[1].Shape)
			}
			if err := tol.Floats(got[0].Data, gap(want[0]), 1e-5, 1e-5); err != nil {
				t.Fatalf("features: %v", err)
			}
			if err := tol.Floats(got[1].Data, want[1].Data, 1e-5, 1e-5); err != nil {
				t.Fatalf("maps: %v", err)
			}
		})
	}
}

func renameValue(g *onnxpb.GraphProto, from, to string) {
	for _, n := range g.Node {
		for i := range n.Input {
			if n.Input[i] == from {
				n.Input[i] = to
			}
		}
		for i := range n.Output {
			if n.Output[i] == from {
				n.Output[i] = to
			}
		}
	}
	for _, vi := range slices.Concat(g.Input, g.Output) {
		if vi.GetName() == from {
			vi.Name = proto.String(to)
		}
	}
}

// checkExtractorGraph checks the contract of extractor.onnx beyond its values.
func checkExtractorGraph(t *testing.T, src, ext *onnxpb.ModelProto, spec *Spec) {
	t.Helper()
	g := ext.Graph
	if len(g.Input) != 1 || g.Input[0].GetName() != spec.Input {
		t.Fatalf("inputs %v, want only %s", g.Input, spec.Input)
	}
	_, dims, _ := onnxgraph.Shape(g.Input[0])
	fixed := 0
	for _, d := range dims {
		if d.Value > 0 {
			fixed++
			if d.Value != 3 {
				t.Fatalf("input dims %v: only the channels may be fixed", dims)
			}
		}
	}
	if fixed != 1 || len(g.ValueInfo) != 0 {
		t.Fatalf("input dims %v, %d value_info entries", dims, len(g.ValueInfo))
	}
	if ext.GetIrVersion() < 4 {
		t.Fatalf("IR version %d lists initializers as inputs", ext.GetIrVersion())
	}
	if len(g.Output) != 2 || g.Output[0].GetName() != FeaturesOutput || g.Output[1].GetName() != MapsOutput {
		t.Fatalf("outputs %v", g.Output)
	}
	srcVGG, err := DetectVGG(src)
	if err != nil {
		t.Fatal(err)
	}
	uses := make(map[string]int)
	for _, n := range g.Node {
		for _, in := range n.Input {
			uses[in]++
		}
	}
	direct := make(map[string]*onnxpb.TensorProto)
	for _, tt := range g.Initializer {
		direct[tt.GetName()] = tt
	}
	c := int64(spec.Block5.Channels)
	for i, conv := range srcVGG.convs[4] {
		for j, name := range []string{spec.Block5.ConvWeights[i], spec.Block5.ConvBiases[i]} {
			tt := direct[name]
			if tt == nil || uses[name] != 1 {
				t.Fatalf("block5 parameter %q: initializer %v, used %d times", name, tt != nil, uses[name])
			}
			wantDims := []int64{c, c, 3, 3}
			if j == 1 {
				wantDims = []int64{c}
			}
			if !slices.Equal(tt.Dims, wantDims) {
				t.Fatalf("%s dims %v, want %v", name, tt.Dims, wantDims)
			}
			orig, ok := Initializer(src, conv.Input[1+j])
			if !ok {
				t.Fatalf("source parameter %s not found", conv.Input[1+j])
			}
			a, _, _ := TensorFloat32(orig)
			b, _, _ := TensorFloat32(tt)
			if err := tol.Floats(b, a, 0, 0); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

func TestPrepareFiles(t *testing.T) {
	t.Parallel()
	srcDir := t.TempDir()
	src := filepath.Join(srcDir, "vgg.onnx")
	if err := Save(src, SynthVGG16(SynthSettings{Seed: 3, Width: tinyWidth, Keras: true})); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "model")
	spec, err := Prepare(context.Background(), src, PrepareSettings{SkipCheck: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(src)
	if got.Source.Bytes != st.Size() || len(got.Source.SHA256) != 64 || !filepath.IsAbs(got.Source.Path) {
		t.Fatalf("source %+v", got.Source)
	}
	if got.Preset != PresetKeras || got.Preprocessing != dataset.CaffePreprocessing || got.Maps == nil || got.Block5 == nil || *got.Block5 != *spec.Block5 {
		t.Fatalf("spec %+v", got)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 2 {
		t.Fatalf("%s holds %d entries, want extractor.onnx and spec.json", out, len(ents))
	}
	t.Run("folder with another model", func(t *testing.T) {
		if _, err := Prepare(context.Background(), src, PrepareSettings{SkipCheck: true}, srcDir); err == nil || !strings.Contains(err.Error(), "vgg.onnx") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("info on the prepared folder", func(t *testing.T) {
		info, err := InspectPath(out)
		if err != nil {
			t.Fatal(err)
		}
		if info.Spec == nil || info.VGG == nil || info.Preset != PresetKeras {
			t.Fatalf("info %+v", info)
		}
		var sb strings.Builder
		if err := info.WriteText(&sb); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"features", "maps", "block5:", "vgg16-keras", "NHWC"} {
			if !strings.Contains(sb.String(), want) {
				t.Fatalf("info text lacks %q:\n%s", want, sb.String())
			}
		}
	})
}

// TestPrepareInputWithoutShape prepares VGGs whose image input declares
// no shape (optional in ONNX): the extractor's input gets [N,3,H,W] or
// [N,H,W,3].
func TestPrepareInputWithoutShape(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc  string
		synth SynthSettings
		want  string
	}{
		{"torchvision", SynthSettings{Seed: 1, Width: tinyWidth}, "[N 3 H W]"},
		{"keras", SynthSettings{Seed: 1, Width: tinyWidth, Keras: true}, "[N H W 3]"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			m := SynthVGG16(tc.synth)
			in, err := imageInput(m.Graph)
			if err != nil {
				t.Fatal(err)
			}
			in.Type.GetTensorType().Shape = nil
			dir := t.TempDir()
			spec, err := prepareModel(context.Background(), m, SourceSpec{}, PrepareSettings{SkipCheck: true}, dir)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := Load(filepath.Join(dir, ExtractorFile))
			if err != nil {
				t.Fatal(err)
			}
			_, dims, _ := onnxgraph.Shape(ext.Graph.Input[0])
			if got := fmt.Sprint(dims); got != tc.want || spec.DefaultSize != vggDefaultSize {
				t.Fatalf("input dims %s, default size %d; want %s, %d", got, spec.DefaultSize, tc.want, vggDefaultSize)
			}
		})
	}
}

// TestPrepareFeatureTensorMalformedTranspose cuts at the output of a
// Transpose that has no input (a malformed graph whose declared shape
// spares the probe run): no panic.
func TestPrepareFeatureTensorMalformedTranspose(t *testing.T) {
	t.Parallel()
	g := &onnxpb.GraphProto{
		Name:  proto.String("g"),
		Input: []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo("x", onnxpb.TensorProto_FLOAT, []any{1, 3, 8, 8})},
		Node: []*onnxpb.NodeProto{
			onnxgraph.Node("Relu", "r", []string{"x"}, []string{"y"}),
			onnxgraph.Node("Transpose", "t", nil, []string{"t"}, onnxgraph.AttrInts("perm", 0, 2, 3, 1)),
		},
		Output:    []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo("y", onnxpb.TensorProto_FLOAT, []any{1, 3, 8, 8})},
		ValueInfo: []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo("t", onnxpb.TensorProto_FLOAT, []any{1, 8, 8, 3})},
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}}}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	_, _ = prepareModel(context.Background(), m, SourceSpec{}, PrepareSettings{FeatureTensor: "t", SkipCheck: true}, t.TempDir())
}

func TestWriteTinyPrepared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec, err := WriteTinyPrepared(dir, 9)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Features.Dim != 32 || spec.Maps.Channels != 32 || spec.Block5.Channels != 32 || spec.Preset != PresetTorchvision {
		t.Fatalf("spec %+v", spec)
	}
	ext, err := Load(filepath.Join(dir, ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range spec.Block5.ConvWeights {
		if _, ok := Initializer(ext, name); !ok {
			t.Fatalf("block5 weight %s missing", name)
		}
	}
	again := t.TempDir()
	if _, err := WriteTinyPrepared(again, 9); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, ExtractorFile))
	b, _ := os.ReadFile(filepath.Join(again, ExtractorFile))
	if string(a) != string(b) {
		t.Fatal("the same seed gave another extractor")
	}
}

func TestPrepareFeatureTensor(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	full := SynthVGG16(SynthSettings{Seed: 21, Width: tinyWidth, Classifier: true, Size: 32})
	v, err := DetectVGG(full)
	if err != nil {
		t.Fatal(err)
	}
	zoo := SynthVGG16(SynthSettings{Seed: 22, Width: tinyWidth, Zoo: true, Size: 32})
	cases := []struct {
		desc, tensor string
		m            *onnxpb.ModelProto
		input        string
		batch        int64
		dim          int
		fixed        int
		pooled       bool
	}{
		{"4-D tensor is pooled", v.Blocks[3].Pool, full, "input", 2, 32, 0, true},
		{"2-D tensor behind a fixed-size Flatten", "vgg0_relu13_fwd", zoo, "data", 1, 256, 32, false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			spec, err := prepareModel(context.Background(), tc.m, SourceSpec{}, PrepareSettings{FeatureTensor: tc.tensor, Preprocessing: PreprocessingCaffe}, dir)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Preset != PresetCustom || spec.Maps != nil || spec.Block5 != nil || spec.Features.Dim != tc.dim || spec.FixedSize != tc.fixed {
				t.Fatalf("spec %+v", spec)
			}
			if spec.Preprocessing.ChannelOrder != dataset.BGR || spec.Preprocessing.Layout != dataset.NCHW {
				t.Fatalf("preprocessing %+v: want caffe's values in the model's NCHW layout", spec.Preprocessing)
			}
			ext, err := Load(filepath.Join(dir, ExtractorFile))
			if err != nil {
				t.Fatal(err)
			}
			shape := []int64{tc.batch, 3, 32, 32}
			want := runWith(t, tc.m, tc.input, shape, tc.tensor)[0]
			got := runWith(t, ext, tc.input, shape, FeaturesOutput)[0]
			w := want.Data
			if tc.pooled {
				w = gap(want)
			}
			if err := tol.Floats(got.Data, w, 1e-5, 1e-5); err != nil {
				t.Fatalf("features: %v", err)
			}
		})
	}
	t.Run("unknown tensor", func(t *testing.T) {
		_, err := prepareModel(context.Background(), full, SourceSpec{}, PrepareSettings{FeatureTensor: "nope"}, t.TempDir())
		if !errors.Is(err, ErrNoTensor) || !strings.Contains(err.Error(), `"nope"`) {
			t.Fatalf("err = %v, want ErrNoTensor naming the tensor", err)
		}
	})
	t.Run("VGG preset with a feature tensor", func(t *testing.T) {
		_, err := prepareModel(context.Background(), full, SourceSpec{}, PrepareSettings{FeatureTensor: v.Blocks[3].Pool, Preset: PresetKeras}, t.TempDir())
		if !errors.Is(err, ErrPreset) {
			t.Fatalf("err = %v", err)
		}
	})
}
