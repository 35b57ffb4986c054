package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

const tinyWidth = 1.0 / 16

// kerasNamesNCHW is a Keras-named graph with NCHW input (tf2onnx
// --inputs-as-nchw): the preset cannot be told from the graph.
func kerasNamesNCHW() *onnxpb.ModelProto {
	m := SynthVGG16(SynthSettings{Seed: 1, Keras: true, Width: tinyWidth})
	g := m.Graph
	first := g.Node[0] // the input Transpose
	g.Node = g.Node[1:]
	for _, n := range g.Node {
		for i, in := range n.Input {
			if in == first.Output[0] {
				n.Input[i] = g.Input[0].GetName()
			}
		}
	}
	g.Input[0] = onnxgraph.ValueInfo(g.Input[0].GetName(), onnxpb.TensorProto_FLOAT, []any{"N", 3, "H", "W"})
	return m
}

func TestDetectPreset(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc     string
		m        *onnxpb.ModelProto
		preset   string
		layout   dataset.Layout
		channels [5]int
	}{
		{"torchvision conv base", TinyVGG(1), PresetTorchvision, dataset.NCHW, [5]int{4, 8, 16, 32, 32}},
		{"torchvision full", SynthVGG16(SynthSettings{Seed: 1, Width: tinyWidth, Classifier: true, Size: 32}), PresetTorchvision, dataset.NCHW, [5]int{4, 8, 16, 32, 32}},
		{"model zoo vgg16-7", SynthVGG16(SynthSettings{Seed: 1, Width: tinyWidth, Zoo: true, Size: 32}), PresetTorchvision, dataset.NCHW, [5]int{4, 8, 16, 32, 32}},
		{"keras conv base", SynthVGG16(SynthSettings{Seed: 1, Keras: true, Width: tinyWidth}), PresetKeras, dataset.NHWC, [5]int{4, 8, 16, 32, 32}},
		{"keras full", SynthVGG16(SynthSettings{Seed: 1, Keras: true, Width: tinyWidth, Classifier: true, Size: 64}), PresetKeras, dataset.NHWC, [5]int{4, 8, 16, 32, 32}},
		{"other width", SynthVGG16(SynthSettings{Seed: 1, Width: 1.0 / 32}), PresetTorchvision, dataset.NCHW, [5]int{2, 4, 8, 16, 16}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			v, err := DetectVGG(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			p, err := detectPreset(v)
			if err != nil {
				t.Fatal(err)
			}
			if p != tc.preset || v.Layout != tc.layout {
				t.Fatalf("preset %s layout %s, want %s %s", p, v.Layout, tc.preset, tc.layout)
			}
			for i, b := range v.Blocks {
				if b.Channels != tc.channels[i] || len(b.Convs) != vggConvCount[i] || b.Pool == "" {
					t.Fatalf("block %d = %+v, want %d channels, %d convs", i+1, b, tc.channels[i], vggConvCount[i])
				}
			}
		})
	}
	t.Run("keras names with NCHW input are ambiguous", func(t *testing.T) {
		v, err := DetectVGG(kerasNamesNCHW())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := detectPreset(v); !errors.Is(err, ErrPreset) || !strings.Contains(err.Error(), "must be named") || strings.Contains(err.Error(), "--") {
			t.Fatalf("err = %v, want an ErrPreset that asks for the preset without naming a CLI flag", err)
		}
		if err := checkPreset(v, PresetKeras); err != nil {
			t.Fatalf("explicit keras preset refused: %v", err)
		}
	})
}

// TestDetectFullSize checks the real VGG16's structure: cheap, no ORT run.
func TestDetectFullSize(t *testing.T) {
	t.Parallel()
	for _, keras := range []bool{false, true} {
		m := SynthVGG16(SynthSettings{Seed: 7, Keras: keras})
		info := Inspect(m)
		if info.VGG == nil {
			t.Fatalf("keras=%v: not detected: %s", keras, info.NotVGG)
		}
		// 14,714,688: the parameter count of Keras' VGG16(include_top=False).
		if info.Parameters != 14714688 {
			t.Fatalf("keras=%v: %d parameters, want 14714688", keras, info.Parameters)
		}
		for i, b := range info.VGG.Blocks {
			if b.Channels != vggChannels[i] {
				t.Fatalf("keras=%v block %d: %d channels", keras, i+1, b.Channels)
			}
		}
	}
}

// notVGG graphs, each departing from VGG16 in one way.
func notVGG() map[string]*onnxpb.ModelProto {
	out := make(map[string]*onnxpb.ModelProto)
	bn := TinyVGG(1)
	g := bn.Graph
	for _, n := range g.Node {
		if n.GetOpType() == "Relu" { // Conv -> BatchNormalization, as in vgg16_bn or a ResNet
			n.OpType = proto.String("BatchNormalization")
			break
		}
	}
	out["batch norm"] = bn
	short := TinyVGG(1)
	short.Graph.Node = short.Graph.Node[:30] // stops inside block 4
	out["too few blocks"] = short
	stride := TinyVGG(1)
	for _, n := range stride.Graph.Node {
		if n.GetOpType() == "MaxPool" {
			n.Attribute = []*onnxpb.AttributeProto{onnxgraph.AttrInts("kernel_shape", 3, 3), onnxgraph.AttrInts("strides", 2, 2)}
			break
		}
	}
	out["3x3 pool"] = stride
	two := TinyVGG(1)
	two.Graph.Input = append(two.Graph.Input, onnxgraph.ValueInfo("mask", onnxpb.TensorProto_FLOAT, []any{1}))
	out["two inputs"] = two
	// Negative channel counts, consistent along the chain, used to pass
	// DetectVGG and make Prepare panic creating block5's missing bias.
	neg := TinyVGG(1)
	var convs []*onnxpb.NodeProto
	for _, n := range neg.Graph.Node {
		if n.GetOpType() == "Conv" {
			convs = append(convs, n)
		}
	}
	for i, n := range convs {
		w, _ := Initializer(neg, n.Input[1])
		w.Dims[0] = -w.Dims[0]
		if i > 0 {
			w.Dims[1] = -w.Dims[1]
		}
		if i >= len(convs)-3 {
			n.Input = n.Input[:2]
		}
	}
	out["negative channels"] = neg
	return out
}

func TestNotVGG(t *testing.T) {
	t.Parallel()
	for desc, m := range notVGG() {
		t.Run(desc, func(t *testing.T) {
			if _, err := DetectVGG(m); !errors.Is(err, ErrNotVGG) {
				t.Fatalf("err = %v, want ErrNotVGG", err)
			}
			// Prepare names the file; the CLI, not models, points at
			// --feature-tensor.
			path := filepath.Join(t.TempDir(), "other.onnx")
			if err := Save(path, m); err != nil {
				t.Fatal(err)
			}
			_, err := Prepare(context.Background(), path, PrepareSettings{SkipCheck: true}, t.TempDir())
			if !errors.Is(err, ErrNotVGG) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "--") {
				t.Fatalf("err = %v, want ErrNotVGG naming %s and no CLI flag", err, path)
			}
		})
	}
}

func TestWrongPreset(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc   string
		m      *onnxpb.ModelProto
		preset string
		text   string
	}{
		{"keras preset on torchvision graph", TinyVGG(1), PresetKeras, "expects NHWC"},
		{"torchvision preset on keras graph", SynthVGG16(SynthSettings{Keras: true, Width: tinyWidth}), PresetTorchvision, "expects NCHW"},
		{"unknown preset", TinyVGG(1), "resnet50", "unknown preset"},
		{"ambiguous without preset", kerasNamesNCHW(), "", "must be named"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vgg.onnx")
			if err := Save(path, tc.m); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			_, err := Prepare(context.Background(), path, PrepareSettings{Preset: tc.preset, SkipCheck: true}, out)
			if !errors.Is(err, ErrPreset) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want ErrPreset naming %s and saying %q", err, path, tc.text)
			}
			if _, err := os.Stat(filepath.Join(out, ExtractorFile)); err == nil {
				t.Fatal("a failed prepare wrote an extractor")
			}
		})
	}
}
