package models

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// VGG16's convolution plan: output channels of each block (at Width 1) and
// the number of 3x3 convolutions per block.
var (
	vggChannels  = [5]int{64, 128, 256, 512, 512}
	vggConvCount = [5]int{2, 2, 3, 3, 3}
)

// MetaSynthetic is the metadata_props key under which a model made by
// SynthVGG16 says that tlearn made it, with the settings that rebuild it
// (JSON: architecture, style, layout, seed, width, size, classifier). The
// graph itself mimics a real exporter's, producer name included, so this
// key is what tells a synthetic model from a real one.
const MetaSynthetic = "tlearn.synthetic"

// synthMeta is the value of MetaSynthetic.
type synthMeta struct {
	Architecture string         `json:"architecture"`
	Style        string         `json:"style"` // torchvision, keras or zoo
	Layout       dataset.Layout `json:"layout"`
	Seed         int64          `json:"seed"`
	Width        float64        `json:"width"`
	Size         int            `json:"size"`
	Classifier   bool           `json:"classifier"`
}

// SynthSettings chooses a synthetic VGG16. The zero value is torchvision's
// conv base (vgg16().features) at full width, seed 0.
type SynthSettings struct {
	Seed int64
	// Keras makes the graph tf2onnx makes of keras.applications.VGG16:
	// NHWC input with a Transpose to NCHW, Keras layer names, output
	// block5_pool transposed back to NHWC.
	Keras bool
	// Zoo makes the graph of the ONNX Model Zoo's vgg16-7: input `data`
	// fixed at [1,3,Size,Size], IR version 3 with the initializers also
	// listed as graph inputs, fixed shapes in value_info, and the classifier.
	// It excludes Keras.
	Zoo bool
	// Width multiplies every channel count (and the classifier's hidden
	// units); 0 means 1, the real VGG16. TinyVGG uses 1/16.
	Width float64
	// Classifier appends the classifier after block5_pool (Flatten and three
	// fully connected layers, as in the full vgg16()), built for Size.
	Classifier bool
	// Size is the input side that the classifier (and Zoo's fixed input)
	// is built for; 0 means 224. It must be a multiple of 32.
	Size int
}

// SynthVGG16 builds a VGG16 (13 Conv+Relu, 5 MaxPool) with seeded
// He-normal weights and small seeded biases, float32, in the layout and
// naming of a real export (see SynthSettings). It panics on settings that
// cannot describe a VGG16 (a programmer error).
func SynthVGG16(s SynthSettings) *onnxpb.ModelProto {
	if s.Width == 0 {
		s.Width = 1
	}
	if s.Size == 0 {
		s.Size = 224
	}
	if s.Width < 0 || s.Size%32 != 0 || (s.Keras && s.Zoo) {
		panic(fmt.Sprintf("models: SynthVGG16: bad settings %+v", s))
	}
	b := &vggBuilder{s: s, rng: rand.New(rand.NewPCG(uint64(s.Seed), 0x766767313621)), g: &onnxpb.GraphProto{}}
	switch {
	case s.Keras:
		b.keras()
	case s.Zoo:
		b.zoo()
	default:
		b.torchvision()
	}
	return b.m
}

// style names the exporter whose graph s mimics.
func (s SynthSettings) style() string {
	switch {
	case s.Keras:
		return "keras"
	case s.Zoo:
		return "zoo"
	}
	return "torchvision"
}

// TinyVGG is the VGG16 topology at 1/16 width (channels 4, 8, 16, 32, 32),
// about 230 kB: for tests that run ORT on every commit.
func TinyVGG(seed int64) *onnxpb.ModelProto {
	return SynthVGG16(SynthSettings{Seed: seed, Width: 1.0 / 16})
}

// Channels returns the channel count of each VGG block at a width.
func (s SynthSettings) Channels() [5]int {
	w := s.Width
	if w == 0 {
		w = 1
	}
	var c [5]int
	for i, v := range vggChannels {
		c[i] = max(1, int(math.Round(float64(v)*w)))
	}
	return c
}

type vggBuilder struct {
	s   SynthSettings
	rng *rand.Rand
	g   *onnxpb.GraphProto
	m   *onnxpb.ModelProto
}

// convParams returns He-normal weights [out,in,3,3] and biases U(-0.1,0.1).
// torchvision initializes biases to 0; small non-zero ones keep tests
// sensitive to a bias that gets lost.
func (b *vggBuilder) convParams(in, out int) (w, bias []float32) {
	w = make([]float32, out*in*9)
	std := math.Sqrt(2 / float64(in*9))
	for i := range w {
		w[i] = float32(b.rng.NormFloat64() * std)
	}
	bias = make([]float32, out)
	for i := range bias {
		bias[i] = float32(b.rng.Float64()*0.2 - 0.1)
	}
	return w, bias
}

func (b *vggBuilder) dense(in, out int) (w, bias []float32) {
	w = make([]float32, in*out)
	std := math.Sqrt(2 / float64(in))
	for i := range w {
		w[i] = float32(b.rng.NormFloat64() * std)
	}
	bias = make([]float32, out)
	return w, bias
}

func (b *vggBuilder) init(t *onnxpb.TensorProto) string {
	b.g.Initializer = append(b.g.Initializer, t)
	return t.GetName()
}

func (b *vggBuilder) add(n *onnxpb.NodeProto) string {
	b.g.Node = append(b.g.Node, n)
	return n.Output[0]
}

func convAttrs() []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{
		onnxgraph.AttrInts("dilations", 1, 1), onnxgraph.AttrInt("group", 1), onnxgraph.AttrInts("kernel_shape", 3, 3),
		onnxgraph.AttrInts("pads", 1, 1, 1, 1), onnxgraph.AttrInts("strides", 1, 1),
	}
}

func poolAttrs() []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{onnxgraph.AttrInts("kernel_shape", 2, 2), onnxgraph.AttrInts("pads", 0, 0, 0, 0), onnxgraph.AttrInts("strides", 2, 2)}
}

func (b *vggBuilder) hidden() (hidden, classes int) {
	if b.s.Width == 1 {
		return 4096, 1000
	}
	return max(8, int(math.Round(4096*b.s.Width))), 10
}

// torchvision: torch.onnx.export(vgg16().features, x, input_names=["input"],
// output_names=["block5_pool"], dynamic_axes=...) with torch 2.x node names.
// With Classifier the whole vgg16() is exported and module paths gain the
// "features." prefix. Block 4 and 5 biases are reached through Identity
// nodes and block5_conv2's weight through a Constant node, as exporters
// produce when they share or fold constants.
func (b *vggBuilder) torchvision() {
	ch := b.s.Channels()
	prefix, scope := "", ""
	if b.s.Classifier {
		prefix, scope = "features.", "/features"
	}
	x := "input"
	b.g.Name = proto.String("main_graph")
	b.g.Input = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{"batch", 3, "height", "width"})}
	idx, in, ident := 0, 3, 0
	for blk := range 5 {
		for range vggConvCount[blk] {
			w, bias := b.convParams(in, ch[blk])
			mod := fmt.Sprintf("%s%d", prefix, idx)
			wName := b.init(NewTensorFloat32(mod+".weight", []int64{int64(ch[blk]), int64(in), 3, 3}, w))
			bName := b.init(NewTensorFloat32(mod+".bias", []int64{int64(ch[blk])}, bias))
			if blk >= 3 {
				ident++
				alias := fmt.Sprintf("onnx::Conv_%d", 100+ident)
				b.add(onnxgraph.Node("Identity", fmt.Sprintf("/Identity_%d", ident), []string{bName}, []string{alias}))
				bName = alias
			}
			if idx == 26 { // block5_conv2
				// Move this weight from the initializers into a Constant node.
				t := b.g.Initializer[len(b.g.Initializer)-2]
				b.g.Initializer = append(b.g.Initializer[:len(b.g.Initializer)-2], b.g.Initializer[len(b.g.Initializer)-1])
				cname := fmt.Sprintf("onnx::Conv_%d", 200+idx)
				t.Name = nil
				b.add(onnxgraph.Node("Constant", fmt.Sprintf("/Constant_%d", idx), nil, []string{cname}, onnxgraph.AttrTensor("value", t)))
				wName = cname
			}
			path := fmt.Sprintf("%s/%s%d", scope, prefix, idx)
			x = b.add(onnxgraph.Node("Conv", path+"/Conv", []string{x, wName, bName}, []string{path + "/Conv_output_0"}, convAttrs()...))
			path = fmt.Sprintf("%s/%s%d", scope, prefix, idx+1)
			x = b.add(onnxgraph.Node("Relu", path+"/Relu", []string{x}, []string{path + "/Relu_output_0"}))
			idx += 2
			in = ch[blk]
		}
		path := fmt.Sprintf("%s/%s%d", scope, prefix, idx)
		out := path + "/MaxPool_output_0"
		if blk == 4 && !b.s.Classifier {
			out = "block5_pool"
		}
		x = b.add(onnxgraph.Node("MaxPool", path+"/MaxPool", []string{x}, []string{out}, append(poolAttrs(), onnxgraph.AttrInt("ceil_mode", 0))...))
		idx++
	}
	if !b.s.Classifier {
		b.g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{"batch", ch[4], "Convpool_dim_2", "Convpool_dim_3"})}
		b.finish(8, 17, "pytorch", "2.1.0")
		return
	}
	side := b.s.Size / 32
	hidden, classes := b.hidden()
	x = b.add(onnxgraph.Node("Flatten", "/Flatten", []string{x}, []string{"/Flatten_output_0"}, onnxgraph.AttrInt("axis", 1)))
	in = ch[4] * side * side
	for i, out := range []int{hidden, hidden, classes} {
		w, bias := b.dense(in, out)
		mod := fmt.Sprintf("classifier.%d", 3*i)
		wName := b.init(NewTensorFloat32(mod+".weight", []int64{int64(out), int64(in)}, w))
		bName := b.init(NewTensorFloat32(mod+".bias", []int64{int64(out)}, bias))
		name := "output"
		if i < 2 {
			name = fmt.Sprintf("/classifier/classifier.%d/Gemm_output_0", 3*i)
		}
		x = b.add(onnxgraph.Node("Gemm", fmt.Sprintf("/classifier/classifier.%d/Gemm", 3*i), []string{x, wName, bName}, []string{name},
			onnxgraph.AttrFloat("alpha", 1), onnxgraph.AttrFloat("beta", 1), onnxgraph.AttrInt("transB", 1)))
		if i < 2 {
			path := fmt.Sprintf("/classifier/classifier.%d", 3*i+1)
			x = b.add(onnxgraph.Node("Relu", path+"/Relu", []string{x}, []string{path + "/Relu_output_0"}))
		}
		in = out
	}
	b.g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{"batch", classes})}
	b.finish(8, 17, "pytorch", "2.1.0")
}

// keras: tf2onnx --opset 13 of keras.applications.VGG16(include_top=...),
// after tf2onnx's transpose optimizer: one Transpose to NCHW after the
// input, NCHW Conv/Relu/MaxPool, and a Transpose back to NHWC before
// block5_pool (or before the flatten of the classifier).
func (b *vggBuilder) keras() {
	ch := b.s.Channels()
	const scope = "StatefulPartitionedCall/vgg16/"
	in0 := "input_1"
	b.g.Name = proto.String("tf2onnx")
	b.g.Input = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(in0, onnxpb.TensorProto_FLOAT, []any{"unk__38", "unk__39", "unk__40", 3})}
	x := b.add(onnxgraph.Node("Transpose", scope+"block1_conv1/Conv2D__6", []string{in0}, []string{scope + "block1_conv1/Conv2D__6:0"}, onnxgraph.AttrInts("perm", 0, 3, 1, 2)))
	in := 3
	for blk := range 5 {
		for c := range vggConvCount[blk] {
			w, bias := b.convParams(in, ch[blk])
			layer := fmt.Sprintf("block%d_conv%d", blk+1, c+1)
			wName := b.init(NewTensorFloat32(fmt.Sprintf("vgg16/%s/Conv2D/ReadVariableOp:0", layer), []int64{int64(ch[blk]), int64(in), 3, 3}, w))
			bName := b.init(NewTensorFloat32(fmt.Sprintf("vgg16/%s/BiasAdd/ReadVariableOp:0", layer), []int64{int64(ch[blk])}, bias))
			x = b.add(onnxgraph.Node("Conv", scope+layer+"/BiasAdd", []string{x, wName, bName}, []string{scope + layer + "/BiasAdd:0"}, convAttrs()...))
			x = b.add(onnxgraph.Node("Relu", scope+layer+"/Relu", []string{x}, []string{scope + layer + "/Relu:0"}))
			in = ch[blk]
		}
		pool := fmt.Sprintf("block%d_pool", blk+1)
		x = b.add(onnxgraph.Node("MaxPool", scope+pool+"/MaxPool", []string{x}, []string{scope + pool + "/MaxPool:0"}, poolAttrs()...))
	}
	if !b.s.Classifier {
		x = b.add(onnxgraph.Node("Transpose", scope+"block5_pool/MaxPool__54", []string{x}, []string{"block5_pool"}, onnxgraph.AttrInts("perm", 0, 2, 3, 1)))
		b.g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{"unk__41", "unk__42", "unk__43", ch[4]})}
		b.finish(7, 13, "tf2onnx", "1.16.1 15c810")
		return
	}
	side := b.s.Size / 32
	hidden, classes := b.hidden()
	x = b.add(onnxgraph.Node("Transpose", scope+"block5_pool/MaxPool__54", []string{x}, []string{scope + "block5_pool/MaxPool__54:0"}, onnxgraph.AttrInts("perm", 0, 2, 3, 1)))
	shape := b.init(NewTensorInt64("const_fold_opt__60", []int64{2}, []int64{-1, int64(ch[4] * side * side)}))
	x = b.add(onnxgraph.Node("Reshape", scope+"flatten/Reshape", []string{x, shape}, []string{scope + "flatten/Reshape:0"}))
	in = ch[4] * side * side
	for i, out := range []int{hidden, hidden, classes} {
		layer := [3]string{"fc1", "fc2", "predictions"}[i]
		w, bias := b.dense(in, out)
		// Keras keeps dense kernels as [in,out]: tf2onnx emits MatMul + Add.
		wName := b.init(NewTensorFloat32(fmt.Sprintf("vgg16/%s/MatMul/ReadVariableOp:0", layer), []int64{int64(in), int64(out)}, w))
		bName := b.init(NewTensorFloat32(fmt.Sprintf("vgg16/%s/BiasAdd/ReadVariableOp:0", layer), []int64{int64(out)}, bias))
		x = b.add(onnxgraph.Node("MatMul", scope+layer+"/MatMul", []string{x, wName}, []string{scope + layer + "/MatMul:0"}))
		x = b.add(onnxgraph.Node("Add", scope+layer+"/BiasAdd", []string{x, bName}, []string{scope + layer + "/BiasAdd:0"}))
		if i < 2 {
			x = b.add(onnxgraph.Node("Relu", scope+layer+"/Relu", []string{x}, []string{scope + layer + "/Relu:0"}))
		} else {
			x = b.add(onnxgraph.Node("Softmax", scope+layer+"/Softmax", []string{x}, []string{"predictions"}, onnxgraph.AttrInt("axis", 1)))
		}
		in = out
	}
	b.g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{"unk__44", classes})}
	b.finish(7, 13, "tf2onnx", "1.16.1 15c810")
}

// zoo: the ONNX Model Zoo's vgg16-7 (converted from MXNet Gluon): fixed
// input data [1,3,224,224], IR version 3 (initializers are graph inputs too),
// Gluon names, Dropout and Flatten before each Gemm.
func (b *vggBuilder) zoo() {
	ch := b.s.Channels()
	side := b.s.Size
	b.g.Name = proto.String("mxnet_converted_model")
	b.g.Input = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo("data", onnxpb.TensorProto_FLOAT, []any{1, 3, side, side})}
	fixed := func(name string, dims ...any) {
		b.g.ValueInfo = append(b.g.ValueInfo, onnxgraph.ValueInfo(name, onnxpb.TensorProto_FLOAT, dims))
	}
	x, in, conv := "data", 3, 0
	for blk := range 5 {
		for range vggConvCount[blk] {
			w, bias := b.convParams(in, ch[blk])
			name := fmt.Sprintf("vgg0_conv%d", conv)
			wName := b.init(NewTensorFloat32(name+"_weight", []int64{int64(ch[blk]), int64(in), 3, 3}, w))
			bName := b.init(NewTensorFloat32(name+"_bias", []int64{int64(ch[blk])}, bias))
			x = b.add(onnxgraph.Node("Conv", name+"_fwd", []string{x, wName, bName}, []string{name + "_fwd"}, onnxgraph.AttrInts("dilations", 1, 1), onnxgraph.AttrInt("group", 1), onnxgraph.AttrInts("kernel_shape", 3, 3), onnxgraph.AttrInts("pads", 1, 1, 1, 1), onnxgraph.AttrInts("strides", 1, 1)))
			fixed(x, 1, ch[blk], side, side)
			x = b.add(onnxgraph.Node("Relu", fmt.Sprintf("vgg0_relu%d_fwd", conv), []string{x}, []string{fmt.Sprintf("vgg0_relu%d_fwd", conv)}))
			fixed(x, 1, ch[blk], side, side)
			in = ch[blk]
			conv++
		}
		side /= 2
		name := fmt.Sprintf("vgg0_pool%d_fwd", blk)
		x = b.add(onnxgraph.Node("MaxPool", name, []string{x}, []string{name}, poolAttrs()...))
		fixed(x, 1, ch[blk], side, side)
	}
	hidden, classes := b.hidden()
	in = ch[4] * side * side
	for i, out := range []int{hidden, hidden, classes} {
		x = b.add(onnxgraph.Node("Flatten", fmt.Sprintf("flatten_%d", 60+5*i), []string{x}, []string{fmt.Sprintf("flatten_%d", 60+5*i)}, onnxgraph.AttrInt("axis", 1)))
		w, bias := b.dense(in, out)
		name := fmt.Sprintf("vgg0_dense%d", i)
		wName := b.init(NewTensorFloat32(name+"_weight", []int64{int64(out), int64(in)}, w))
		bName := b.init(NewTensorFloat32(name+"_bias", []int64{int64(out)}, bias))
		x = b.add(onnxgraph.Node("Gemm", name+"_fwd", []string{x, wName, bName}, []string{name + "_fwd"}, onnxgraph.AttrFloat("alpha", 1), onnxgraph.AttrFloat("beta", 1), onnxgraph.AttrInt("transA", 0), onnxgraph.AttrInt("transB", 1)))
		if i < 2 {
			x = b.add(onnxgraph.Node("Relu", fmt.Sprintf("vgg0_relu%d_fwd", 13+i), []string{x}, []string{fmt.Sprintf("vgg0_relu%d_fwd", 13+i)}))
			x = b.add(onnxgraph.Node("Dropout", fmt.Sprintf("vgg0_dropout%d_fwd", i), []string{x}, []string{fmt.Sprintf("vgg0_dropout%d_fwd", i)}, onnxgraph.AttrFloat("ratio", 0.5)))
		}
		in = out
	}
	b.g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(x, onnxpb.TensorProto_FLOAT, []any{1, classes})}
	for _, t := range b.g.Initializer {
		dims := make([]any, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = d
		}
		b.g.Input = append(b.g.Input, onnxgraph.ValueInfo(t.GetName(), onnxpb.TensorProto_FLOAT, dims))
	}
	b.finish(3, 7, "MXNet", "")
}

func (b *vggBuilder) finish(ir, opset int64, producer, version string) {
	b.m = &onnxpb.ModelProto{
		IrVersion:    proto.Int64(ir),
		ProducerName: proto.String(producer),
		Graph:        b.g,
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
	}
	if version != "" {
		b.m.ProducerVersion = proto.String(version)
	}
	layout := dataset.NCHW
	if b.s.Keras {
		layout = dataset.NHWC
	}
	meta, err := json.Marshal(synthMeta{Architecture: "vgg16", Style: b.s.style(), Layout: layout,
		Seed: b.s.Seed, Width: b.s.Width, Size: b.s.Size, Classifier: b.s.Classifier})
	if err != nil {
		panic(fmt.Sprintf("models: SynthVGG16: %v", err)) // a struct of plain fields always encodes
	}
	b.m.MetadataProps = []*onnxpb.StringStringEntryProto{{Key: proto.String(MetaSynthetic), Value: proto.String(string(meta))}}
}
