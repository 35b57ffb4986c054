package models

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Backbone presets (DESIGN.md, "Backbone presets").
const (
	PresetTorchvision = "vgg16-torchvision" // torch.onnx export of torchvision's VGG16, and the ONNX Model Zoo's vgg16-7/12
	PresetKeras       = "vgg16-keras"       // tf2onnx export of keras.applications.VGG16
	PresetCustom      = "custom"            // any backbone, cut at a named feature tensor
)

// Presets lists the VGG16 presets.
var Presets = []string{PresetTorchvision, PresetKeras}

// presetPreprocessing returns a preset's input preprocessing.
func presetPreprocessing(preset string) (dataset.Preprocessing, bool) {
	switch preset {
	case PresetTorchvision:
		return dataset.TorchvisionPreprocessing, true
	case PresetKeras:
		return dataset.CaffePreprocessing, true
	}
	return dataset.Preprocessing{}, false
}

// ErrNotVGG is wrapped by DetectVGG's errors: the graph is not a VGG16.
var ErrNotVGG = errors.New("models: not a VGG16-shaped graph")

// ErrPreset is wrapped when a preset does not fit a graph or none can be chosen.
var ErrPreset = errors.New("models: preset")

// VGG describes the VGG16 conv base found in a graph.
type VGG struct {
	Input  string         `json:"input"`  // the graph's image input
	Layout dataset.Layout `json:"layout"` // of Input: NHWC when a Transpose to NCHW precedes the first Conv
	Blocks [5]VGGBlock    `json:"blocks"`
	// KerasNames is set when layer names look like Keras' (block1_conv1...):
	// an NCHW graph with them may be a Keras export with NCHW input, so the
	// preset is not detected.
	KerasNames bool `json:"keras_names,omitempty"`

	convs [5][]*onnxpb.NodeProto
	input *onnxpb.ValueInfoProto
}

// VGGBlock is one block: its Conv nodes and the tensor its MaxPool writes
// (always NCHW: ONNX's MaxPool is).
type VGGBlock struct {
	Convs    []string `json:"convs"` // Conv node names (output tensor names for unnamed nodes)
	Channels int      `json:"channels"`
	Pool     string   `json:"pool"`
}

// DetectVGG walks the graph from its image input along the chain of Conv,
// Relu, MaxPool (and layout Transposes and Identity) nodes up to the fifth
// MaxPool, and checks VGG16's shape: 2, 2, 3, 3, 3 3x3 convolutions with
// equal channels within a block, each followed by Relu, and 2x2 stride-2
// pools. Whatever follows the fifth pool (a classifier) is ignored. Names are
// never used to find blocks. Errors wrap ErrNotVGG and say where the graph
// departs from VGG16.
func DetectVGG(m *onnxpb.ModelProto) (*VGG, error) {
	g := m.GetGraph()
	input, err := imageInput(g)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotVGG, err)
	}
	w := &vggWalk{m: m, v: &VGG{Input: input.GetName(), Layout: dataset.NCHW, input: input}}
	consumers := chainConsumers(g)
	cur := w.v.Input
	for steps := 0; w.blk < 5; steps++ {
		if steps > len(g.Node) {
			return nil, fmt.Errorf("%w: the graph loops", ErrNotVGG)
		}
		n, err := nextInChain(consumers[cur], cur)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotVGG, err)
		}
		if err := w.step(n); err != nil {
			return nil, err
		}
		cur = n.Output[0]
	}
	w.v.KerasNames = kerasNames(w.v.convs)
	return w.v, nil
}

// chainConsumers maps each tensor to the nodes that take it as a data
// input (a Conv's weight and bias are not chain tensors).
func chainConsumers(g *onnxpb.GraphProto) map[string][]*onnxpb.NodeProto {
	consumers := make(map[string][]*onnxpb.NodeProto)
	for _, n := range g.Node {
		for i, in := range n.Input {
			if i == 0 || n.GetOpType() != "Conv" {
				consumers[in] = append(consumers[in], n)
			}
		}
	}
	return consumers
}

// vggWalk is DetectVGG's state along the chain.
type vggWalk struct {
	m       *onnxpb.ModelProto
	v       *VGG
	blk     int               // the block being read, 0..4
	inCh    int64             // channels the next Conv must take; 0 before the first
	pending *onnxpb.NodeProto // a Conv waiting for its Relu
}

// notVGGf is an error wrapping ErrNotVGG that says where the graph departs
// from VGG16.
func notVGGf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotVGG, fmt.Sprintf(format, args...))
}

// step checks one node of the chain and records it. Its errors (and those
// of the steps it calls) wrap ErrNotVGG.
func (w *vggWalk) step(n *onnxpb.NodeProto) error {
	if len(n.Output) == 0 {
		return notVGGf("node %s has no output", nodeName(n))
	}
	if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
		return notVGGf("node %s has op %s of domain %q", nodeName(n), n.GetOpType(), n.GetDomain())
	}
	if w.pending != nil && n.GetOpType() != "Relu" {
		return notVGGf("Conv %s is followed by %s %s, not Relu", nodeName(w.pending), n.GetOpType(), nodeName(n))
	}
	switch n.GetOpType() {
	case "Transpose":
		return w.transpose(n)
	case "Identity", "Dropout":
	case "Relu":
		w.pending = nil
	case "Conv":
		return w.conv(n)
	case "MaxPool":
		return w.maxPool(n)
	default:
		where := "after the input"
		if w.blk > 0 || len(w.v.convs[0]) > 0 {
			where = fmt.Sprintf("in block %d", w.blk+1)
		}
		return notVGGf("node %s (%s) %s; a VGG16 conv base has only Conv, Relu and MaxPool", nodeName(n), n.GetOpType(), where)
	}
	return nil
}

// transpose accepts a Transpose to NCHW before the first Conv (NHWC
// input) and layout Transposes in pairs around NCHW ops.
func (w *vggWalk) transpose(n *onnxpb.NodeProto) error {
	perm := onnxgraph.Attr(n, "perm").GetInts()
	switch {
	case slices.Equal(perm, []int64{0, 3, 1, 2}) && w.blk == 0 && len(w.v.convs[0]) == 0:
		w.v.Layout = dataset.NHWC
	case slices.Equal(perm, []int64{0, 3, 1, 2}) || slices.Equal(perm, []int64{0, 2, 3, 1}):
		// tf2onnx without its optimizer wraps single ops in
		// Transpose pairs; the NCHW ops in between are what count.
	default:
		return notVGGf("Transpose %s has perm %v", nodeName(n), perm)
	}
	return nil
}

// conv checks a Conv against VGG16's plan and the layer before it.
func (w *vggWalk) conv(n *onnxpb.NodeProto) error {
	c, in, err := checkConv(w.m, n)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotVGG, err)
	}
	blk, v := w.blk, w.v
	switch {
	case len(v.convs[blk]) == vggConvCount[blk]:
		return notVGGf("block %d has more than %d convolutions (Conv %s)", blk+1, vggConvCount[blk], nodeName(n))
	case w.inCh != 0 && in != w.inCh:
		return notVGGf("Conv %s takes %d channels, the previous layer gives %d", nodeName(n), in, w.inCh)
	case w.inCh == 0 && in != 3:
		return notVGGf("the first Conv %s takes %d channels, not 3 (RGB)", nodeName(n), in)
	case len(v.convs[blk]) > 0 && int(c) != v.Blocks[blk].Channels:
		return notVGGf("Conv %s in block %d has %d channels, the block's first has %d", nodeName(n), blk+1, c, v.Blocks[blk].Channels)
	}
	v.convs[blk] = append(v.convs[blk], n)
	v.Blocks[blk].Convs = append(v.Blocks[blk].Convs, nodeName(n))
	v.Blocks[blk].Channels = int(c)
	w.inCh = c
	w.pending = n
	return nil
}

// maxPool ends a block that has all its convolutions.
func (w *vggWalk) maxPool(n *onnxpb.NodeProto) error {
	blk := w.blk
	if got := len(w.v.convs[blk]); got != vggConvCount[blk] {
		return notVGGf("block %d ends (MaxPool %s) after %d convolutions, VGG16 has %d", blk+1, nodeName(n), got, vggConvCount[blk])
	}
	if k, s := onnxgraph.Attr(n, "kernel_shape").GetInts(), onnxgraph.Attr(n, "strides").GetInts(); !slices.Equal(k, []int64{2, 2}) || !slices.Equal(s, []int64{2, 2}) {
		return notVGGf("MaxPool %s has kernel %v and strides %v, not 2x2 stride 2", nodeName(n), k, s)
	}
	w.v.Blocks[blk].Pool = n.Output[0]
	w.blk++
	return nil
}

// kerasNames reports whether the convolutions carry Keras' layer names.
func kerasNames(convs [5][]*onnxpb.NodeProto) bool {
	for _, blk := range convs {
		for _, n := range blk {
			if strings.Contains(n.GetName(), "block1_conv1") || strings.Contains(n.Output[0], "block1_conv1") {
				return true
			}
		}
	}
	return false
}

// imageInput is the one graph input that is not an initializer (IR < 4
// lists initializers as inputs too).
func imageInput(g *onnxpb.GraphProto) (*onnxpb.ValueInfoProto, error) {
	if g == nil {
		return nil, errors.New("no graph")
	}
	inits := make(map[string]bool, len(g.Initializer))
	for _, t := range g.Initializer {
		inits[t.GetName()] = true
	}
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range g.Input {
		if !inits[vi.GetName()] {
			ins = append(ins, vi)
		}
	}
	if len(ins) != 1 {
		names := make([]string, len(ins))
		for i, vi := range ins {
			names[i] = vi.GetName()
		}
		return nil, fmt.Errorf("the graph has %d inputs %q, want one image input", len(ins), names)
	}
	return ins[0], nil
}

// nextInChain picks the node that continues the chain from tensor cur. Side
// consumers (an Identity to a graph output, a prepared model's pooling) are
// passed over when exactly one consumer is a Conv, Relu or MaxPool.
func nextInChain(cs []*onnxpb.NodeProto, cur string) (*onnxpb.NodeProto, error) {
	switch len(cs) {
	case 0:
		return nil, fmt.Errorf("tensor %q ends the graph before the fifth MaxPool", cur)
	case 1:
		return cs[0], nil
	}
	var main []*onnxpb.NodeProto
	for _, n := range cs {
		switch n.GetOpType() {
		case "Conv", "Relu", "MaxPool":
			main = append(main, n)
		}
	}
	if len(main) == 1 {
		return main[0], nil
	}
	return nil, fmt.Errorf("tensor %q feeds %d nodes (a branch); VGG16 is a chain", cur, len(cs))
}

// checkConv checks a 3x3 stride-1 pad-1 convolution and returns its output
// and input channels.
func checkConv(m *onnxpb.ModelProto, n *onnxpb.NodeProto) (out, in int64, err error) {
	if len(n.Input) < 2 {
		return 0, 0, fmt.Errorf("convolution %s has no weight input", nodeName(n))
	}
	w, ok := Initializer(m, n.Input[1])
	if !ok {
		return 0, 0, fmt.Errorf("convolution %s: weight %q is not a constant", nodeName(n), n.Input[1])
	}
	if len(w.Dims) != 4 || w.Dims[0] <= 0 || w.Dims[1] <= 0 || w.Dims[2] != 3 || w.Dims[3] != 3 {
		return 0, 0, fmt.Errorf("convolution %s: weight dims %v, want [out,in,3,3]", nodeName(n), w.Dims)
	}
	if w.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return 0, 0, fmt.Errorf("convolution %s: weight type %s, want FLOAT", nodeName(n), onnxgraph.DataTypeName(w.GetDataType()))
	}
	if g := onnxgraph.Attr(n, "group"); g != nil && g.GetI() != 1 {
		return 0, 0, fmt.Errorf("convolution %s has group %d", nodeName(n), g.GetI())
	}
	if s := onnxgraph.Attr(n, "strides"); s != nil && !slices.Equal(s.GetInts(), []int64{1, 1}) {
		return 0, 0, fmt.Errorf("convolution %s has strides %v", nodeName(n), s.GetInts())
	}
	if d := onnxgraph.Attr(n, "dilations"); d != nil && !slices.Equal(d.GetInts(), []int64{1, 1}) {
		return 0, 0, fmt.Errorf("convolution %s has dilations %v", nodeName(n), d.GetInts())
	}
	pads := onnxgraph.Attr(n, "pads").GetInts()
	auto := string(onnxgraph.Attr(n, "auto_pad").GetS())
	if !slices.Equal(pads, []int64{1, 1, 1, 1}) && auto != "SAME_UPPER" && auto != "SAME_LOWER" {
		return 0, 0, fmt.Errorf("convolution %s has pads %v (auto_pad %q); VGG16 pads 1", nodeName(n), pads, auto)
	}
	return w.Dims[0], w.Dims[1], nil
}

// nodeName names a node for messages: its name, else its first output.
func nodeName(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q", n.GetName())
	}
	if len(n.Output) > 0 {
		return fmt.Sprintf("(output %q)", n.Output[0])
	}
	return "(unnamed)"
}

// detectPreset chooses the preset of a VGG graph: NHWC input through a
// Transpose is a tf2onnx Keras export; NCHW input is torchvision's (and
// the Model Zoo's) unless layer names look like Keras', in which case the
// channel order cannot be told from the graph and the caller must name the
// preset (PrepareSettings.Preset). Errors wrap ErrPreset.
func detectPreset(v *VGG) (string, error) {
	if v.Layout == dataset.NHWC {
		return PresetKeras, nil
	}
	if v.KerasNames {
		return "", fmt.Errorf("%w: the input is NCHW but the layers have Keras names; a Keras export with NCHW input takes BGR caffe preprocessing, torchvision RGB: the preset (%s or %s) must be named",
			ErrPreset, PresetTorchvision, PresetKeras)
	}
	return PresetTorchvision, nil
}

// checkPreset reports whether preset fits the graph's input layout.
func checkPreset(v *VGG, preset string) error {
	p, ok := presetPreprocessing(preset)
	if !ok {
		return fmt.Errorf("%w: unknown preset %q (want %s)", ErrPreset, preset, strings.Join(Presets, " or "))
	}
	if p.Layout == v.Layout {
		return nil
	}
	// A Keras model exported with NCHW input (tf2onnx --inputs-as-nchw) is
	// possible; torchvision graphs with NHWC input are not.
	if preset == PresetKeras && v.KerasNames {
		return nil
	}
	return fmt.Errorf("%w: %s expects %s input, but input %q is %s (its first Conv is reached %s)",
		ErrPreset, preset, p.Layout, v.Input, v.Layout, map[dataset.Layout]string{dataset.NHWC: "through a Transpose to NCHW", dataset.NCHW: "without a Transpose"}[v.Layout])
}
