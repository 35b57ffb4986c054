package traingraph

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Names of the training and evaluation graphs' data inputs and outputs.
// Parameters keep the names of the run folder's weights file
// (block5_conv1.weight, hidden.bias, ...); see Param for their layout.
const (
	MapsInput    = "maps"         // [B,C,h,w] block4_pool maps, float16 (or float32, Spec.MapsFloat32)
	LabelsInput  = "labels"       // [B,K] float32 one-hot (or any distribution)
	MaskInput    = "dropout_mask" // [B,H] float32: 0 or 1/(1−p), present when Spec.Dropout
	LossOutput   = "loss"         // [1] mean cross-entropy over the batch
	LogitsOutput = "logits"       // [B,K]
	ProbsOutput  = "probs"        // [B,K] softmax, eval graph only
	// AdamVScaleInput is 1/√(1−β2ᵗ), Adam's second-moment bias correction
	// for step t (counted from 1), shape [1].
	AdamVScaleInput = "adam.v_scale"
	// L2Input is the coupled L2 factor λ (Spec.L2), shape [1]:
	// λ·θ is added to the gradient of every kernel (not the biases).
	L2Input = "l2"
	// FeaturesOutput of the eval graph: the head's input, GAP of the
	// pooled block5 output [B,C].
	FeaturesOutput = "features"
)

// Parameter groups: each has its own learning-rate input (LRInput) and,
// with weight decay, its own decay input (DecayInput).
const (
	GroupBlock5 = "block5"
	GroupHead   = "head"
)

// Adam's constants (DESIGN.md, "Adam, exactly").
const (
	AdamBeta1   = 0.9
	AdamBeta2   = 0.999
	AdamEpsilon = 1e-7
)

// LRInput names a group's step-size input, shape [1]: for Adam
// lr/(1−β1ᵗ) (the first-moment bias correction folded in), for SGD lr.
func LRInput(group string) string { return "lr." + group }

// DecayInput names a group's decoupled weight-decay factor 1 − lr·wd,
// shape [1] (present when Spec.WeightDecay).
func DecayInput(group string) string { return "decay." + group }

// MomentName names an optimizer state tensor of a parameter: "m" (Adam's
// first moment, SGD's momentum buffer) or "v" (Adam's second moment).
func MomentName(param, moment string) string { return param + "." + moment }

// NextName names the output that holds the updated value of a parameter
// or moment input.
func NextName(input string) string { return input + ".new" }

// Head parameter names (as in the run folder's weights file).
const (
	HiddenWeight = "hidden.weight" // [C,H]
	HiddenBias   = "hidden.bias"   // [H]
	OutputWeight = "output.weight" // [H or C, K]
	OutputBias   = "output.bias"   // [K]
)

// Optimizers the training graph implements.
const (
	OptimizerAdam = "adam"
	OptimizerSGD  = "sgd"
)

// Spec fully describes a generated training graph. It has no
// defaults (finetune.Settings has them): every field means what it
// says, zero included.
type Spec struct {
	// Channels, Height and Width are the block4_pool maps' shape [C,h,w];
	// block5 keeps C channels (512 for VGG16, fewer for test models).
	Channels, Height, Width int
	Hidden                  int  // hidden Dense units; 0 = no hidden layer
	Classes                 int  // K ≥ 2
	Dropout                 bool // the graph takes MaskInput, multiplied after the hidden layer (or the features)
	// Optimizer is OptimizerAdam or OptimizerSGD. Adam is DESIGN.md's
	// (Kingma & Ba, PyTorch's form); SGD uses PyTorch's momentum
	// (buf ← μ·buf + g; θ ← θ − lr·buf).
	Optimizer string
	Momentum  float64 // SGD's μ; 0 = plain SGD (the graph then keeps no moment)
	// WeightDecay adds DecayInput per group and makes it decoupled
	// (AdamW-style): θ ← (1 − lr·wd)·θ − step, never added to the gradient.
	WeightDecay bool
	// L2 adds L2Input and the coupled L2 term to the kernels' gradients
	// (head.Settings.L2's meaning, PyTorch's weight_decay).
	L2 bool
	// FreezeBlock5 keeps block5 fixed: its weights are inputs that the
	// graph reads but neither differentiates nor updates (the forward is
	// still computed). This is not a zero learning rate: no gradient work
	// is spent on block5 at all.
	FreezeBlock5 bool
	MapsFloat32  bool // maps input is float32 instead of the cache's float16

	// Conv is a benchmarking knob, left empty by trainers: the
	// formulation of block5's convolutions and their gradients. "" and
	// "winograd" mean Winograd's F(2×2, 3×3) (im2col + Gemm for odd map
	// sides); "gemm", "gemm_conv_dx" and "hybrid" compute the same step
	// at other speeds and with other weight layouts (Param.Layout). The
	// profiler (go run ./models/traingraph/internal/profilestep) and the
	// package's benchmarks compare them.
	Conv string

	// sliceIm2col builds im2col from slices instead of a Gather, for the
	// benchmarks that compare the two.
	sliceIm2col bool
}

// Param is one parameter input of a training or evaluation graph.
// Convolution weights are in the graph's Layout (FromTorchvision and
// ToTorchvision convert); dense weights are Keras' [in,out].
type Param struct {
	Name      string
	Shape     []int64
	Layout    string // LayoutOIHW or LayoutOHWI for convolution weights, "" otherwise
	Group     string // GroupBlock5 or GroupHead
	Trainable bool   // false for block5 when frozen
}

// Kernel reports whether p is a weight matrix or convolution kernel
// rather than a bias.
func (p Param) Kernel() bool { return len(p.Shape) >= 2 }

// Size is the number of values.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= int(d)
	}
	return n
}

// Graph is a generated graph with its interface.
type Graph struct {
	Model   *onnxpb.ModelProto
	Spec    Spec
	Params  []Param  // every parameter input, in input order
	Moments []string // optimizer moments per trainable parameter: none, "m", or "m" and "v"
	Inputs  []string // every graph input, in order
	Outputs []string // every graph output, in order
}

// InputShapes returns the shape of every input of g, by name, with the
// free batch dimension set to batch.
func (g *Graph) InputShapes(batch int64) map[string][]int64 {
	shapes := map[string][]int64{}
	for _, vi := range g.Model.GetGraph().GetInput() {
		var dims []int64
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if d.GetDimParam() != "" {
				dims = append(dims, batch)
			} else {
				dims = append(dims, d.GetDimValue())
			}
		}
		shapes[vi.GetName()] = dims
	}
	return shapes
}

// ErrSpec is wrapped by errors about an impossible Spec.
var ErrSpec = errors.New("traingraph: bad training graph settings")

func (s Spec) validate() error {
	switch {
	case s.Channels <= 0 || s.Height < 2 || s.Width < 2:
		return fmt.Errorf("%w: maps [%d,%d,%d] (block5 needs at least 2×2 maps)", ErrSpec, s.Channels, s.Height, s.Width)
	case s.Hidden < 0:
		return fmt.Errorf("%w: hidden %d", ErrSpec, s.Hidden)
	case s.Classes < 2:
		return fmt.Errorf("%w: %d classes", ErrSpec, s.Classes)
	case s.Optimizer != OptimizerAdam && s.Optimizer != OptimizerSGD:
		return fmt.Errorf("%w: optimizer %q (want %s or %s)", ErrSpec, s.Optimizer, OptimizerAdam, OptimizerSGD)
	case s.Momentum < 0 || s.Momentum >= 1:
		return fmt.Errorf("%w: momentum %g", ErrSpec, s.Momentum)
	}
	if _, ok := parseConvForm(s.Conv); !ok {
		return fmt.Errorf("%w: conv %q (want %s or empty)", ErrSpec, s.Conv, strings.Join(convFormNames[:], ", "))
	}
	return nil
}

// form is the convolution formulation that s's graphs use.
func (s Spec) form() convForm {
	f, _ := parseConvForm(s.Conv)
	return f.effective(s.Height, s.Width)
}

// Params lists the parameters of spec in graph input order: block5's
// three convolutions, then the head.
func (s Spec) Params() []Param {
	c := int64(s.Channels)
	layout := s.form().weightLayout()
	wshape := weightShape(layout, c)
	var ps []Param
	for i := 1; i <= 3; i++ {
		ps = append(ps,
			Param{models.Block5WeightName(i), wshape, layout, GroupBlock5, !s.FreezeBlock5},
			Param{models.Block5BiasName(i), []int64{c}, "", GroupBlock5, !s.FreezeBlock5})
	}
	in := c
	if s.Hidden > 0 {
		h := int64(s.Hidden)
		ps = append(ps,
			Param{HiddenWeight, []int64{c, h}, "", GroupHead, true},
			Param{HiddenBias, []int64{h}, "", GroupHead, true})
		in = h
	}
	k := int64(s.Classes)
	return append(ps,
		Param{OutputWeight, []int64{in, k}, "", GroupHead, true},
		Param{OutputBias, []int64{k}, "", GroupHead, true})
}

// MaskWidth is the dropout mask's second dimension: the hidden size, or C
// without a hidden layer.
func (s Spec) MaskWidth() int {
	if s.Hidden > 0 {
		return s.Hidden
	}
	return s.Channels
}

func (s Spec) moments() []string {
	switch {
	case s.Optimizer == OptimizerAdam:
		return []string{"m", "v"}
	case s.Momentum > 0:
		return []string{"m"}
	}
	return nil
}

// forward emits block5 and the head on the maps and returns the logits and
// the head's input features; mask, when not "", is the dropout mask
// multiplied in.
func (b *graphBuilder) forward(s Spec, maps string, params map[string]string, mask string) (logits, features string) {
	c, h, w := int64(s.Channels), int64(s.Height), int64(s.Width)
	x := maps
	if !b.form.nchw() {
		// Transposing before the Cast moves half the bytes.
		x = b.node("Transpose", []string{maps}, []int64{batchDim, h, w, c}, onnxgraph.AttrInts("perm", 0, 2, 3, 1))
	}
	if !s.MapsFloat32 {
		x = b.node("Cast", []string{x}, b.shape(x), onnxgraph.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	}
	for i := 1; i <= 3; i++ {
		x = b.relu(b.conv3x3(x, params[models.Block5WeightName(i)], params[models.Block5BiasName(i)]))
	}
	f := b.globalAveragePool(b.maxPool2x2(x))
	features = f
	if s.Hidden > 0 {
		f = b.relu(b.gemm(f, params[HiddenWeight], params[HiddenBias]))
	}
	if mask != "" {
		f = b.mul(f, mask)
	}
	return b.gemm(f, params[OutputWeight], params[OutputBias]), features
}

func (b *graphBuilder) mapsInput(s Spec) string {
	elem := onnxpb.TensorProto_FLOAT16
	if s.MapsFloat32 {
		elem = onnxpb.TensorProto_FLOAT
	}
	return b.input(MapsInput, elem, []int64{batchDim, int64(s.Channels), int64(s.Height), int64(s.Width)})
}

// declareParams adds every parameter input and returns name → value.
func (b *graphBuilder) declareParams(ps []Param) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Name] = b.input(p.Name, onnxpb.TensorProto_FLOAT, p.Shape)
		if p.Trainable {
			b.needGrad[p.Name] = true
		}
	}
	return m
}

// TrainStep generates the train-step graph: one forward and backward
// pass over a batch and one optimizer update. Inputs, in order: maps,
// labels, the dropout mask (when spec.Dropout), the step size of each
// trainable group (LRInput, block5 first), AdamVScaleInput (Adam), the
// decay factors (DecayInput, with WeightDecay), L2Input (with L2), every
// parameter
// (Params order), then the moments of every trainable parameter
// (MomentName, "m" before "v"). Outputs: loss, logits, then for every
// trainable parameter NextName of itself followed by those of its moments.
// Graph.Inputs and Outputs list the same.
func TrainStep(s Spec) (*Graph, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := newGraphBuilder("tlearn_train_step")
	b.form, b.sliceIm2col = s.form(), s.sliceIm2col
	ps := s.Params()
	maps := b.mapsInput(s)
	labels := b.input(LabelsInput, onnxpb.TensorProto_FLOAT, []int64{batchDim, int64(s.Classes)})
	mask := ""
	if s.Dropout {
		mask = b.input(MaskInput, onnxpb.TensorProto_FLOAT, []int64{batchDim, int64(s.MaskWidth())})
	}
	groups := map[string]bool{}
	for _, p := range ps {
		groups[p.Group] = groups[p.Group] || p.Trainable
	}
	lr, decay := map[string]string{}, map[string]string{}
	for _, g := range []string{GroupBlock5, GroupHead} {
		if groups[g] {
			lr[g] = b.input(LRInput(g), onnxpb.TensorProto_FLOAT, []int64{1})
		}
	}
	vscale := ""
	if s.Optimizer == OptimizerAdam {
		vscale = b.input(AdamVScaleInput, onnxpb.TensorProto_FLOAT, []int64{1})
	}
	if s.WeightDecay {
		for _, g := range []string{GroupBlock5, GroupHead} {
			if groups[g] {
				decay[g] = b.input(DecayInput(g), onnxpb.TensorProto_FLOAT, []int64{1})
			}
		}
	}
	l2 := ""
	if s.L2 {
		l2 = b.input(L2Input, onnxpb.TensorProto_FLOAT, []int64{1})
	}
	params := b.declareParams(ps)
	moments := s.moments()
	var trainable []Param
	var names []string
	for _, p := range ps {
		if p.Trainable {
			trainable = append(trainable, p)
			names = append(names, p.Name)
		}
	}
	mom := make([][]string, len(trainable))
	for i, p := range trainable {
		for _, m := range moments {
			mom[i] = append(mom[i], b.input(MomentName(p.Name, m), onnxpb.TensorProto_FLOAT, p.Shape))
		}
	}

	b.scope = "forward"
	logits, _ := b.forward(s, maps, params, mask)
	loss := b.softmaxCrossEntropy(logits, labels)
	b.scope = "backward"
	grads := b.backward(loss, names)
	b.scope = "update"
	b.output(LossOutput, loss, onnxpb.TensorProto_FLOAT)
	b.output(LogitsOutput, logits, onnxpb.TensorProto_FLOAT)
	for i, p := range trainable {
		g := grads[i]
		if l2 != "" && p.Kernel() {
			g = b.node("Add", []string{g, b.node("Mul", []string{p.Name, l2}, p.Shape)}, p.Shape)
		}
		b.update(s, p, g, mom[i], lr[p.Group], vscale, decay[p.Group])
	}
	return b.finish(s, ps, moments, "tlearn block5 + head train step"), nil
}

// update emits one optimizer step for parameter p with gradient g and
// declares the updated parameter and moments as graph outputs.
func (b *graphBuilder) update(s Spec, p Param, g string, mom []string, lr, vscale, decay string) {
	sh := p.Shape
	f := b.constFloat
	var step string
	var next []string
	switch {
	case s.Optimizer == OptimizerAdam:
		m, v := mom[0], mom[1]
		m1 := b.nodeNamed("Add", []string{
			b.node("Mul", []string{m, f(AdamBeta1)}, sh),
			b.node("Mul", []string{g, f(1 - AdamBeta1)}, sh)}, NextName(m), sh)
		g2 := b.node("Mul", []string{g, g}, sh)
		v1 := b.nodeNamed("Add", []string{
			b.node("Mul", []string{v, f(AdamBeta2)}, sh),
			b.node("Mul", []string{g2, f(1 - AdamBeta2)}, sh)}, NextName(v), sh)
		sq := b.node("Sqrt", []string{v1}, sh)
		den := b.node("Add", []string{b.node("Mul", []string{sq, vscale}, sh), f(AdamEpsilon)}, sh)
		step = b.node("Mul", []string{b.node("Div", []string{m1, den}, sh), lr}, sh)
		next = []string{m1, v1}
	case s.Momentum > 0:
		m1 := b.nodeNamed("Add", []string{b.node("Mul", []string{mom[0], f(float32(s.Momentum))}, sh), g}, NextName(mom[0]), sh)
		step = b.node("Mul", []string{m1, lr}, sh)
		next = []string{m1}
	default:
		step = b.node("Mul", []string{g, lr}, sh)
	}
	base := p.Name
	if decay != "" {
		base = b.node("Mul", []string{base, decay}, sh)
	}
	b.output(NextName(p.Name), b.nodeNamed("Sub", []string{base, step}, NextName(p.Name), sh), onnxpb.TensorProto_FLOAT)
	for _, n := range next {
		b.output(n, n, onnxpb.TensorProto_FLOAT)
	}
}

// Eval generates the evaluation graph: the forward pass without
// dropout. Inputs: maps, then every parameter (Params order; training
// settings such as FreezeBlock5 do not matter). Outputs: logits, probs and
// features (the head's input).
func Eval(s Spec) (*Graph, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := newGraphBuilder("tlearn_eval")
	b.form, b.sliceIm2col = s.form(), s.sliceIm2col
	ps := s.Params()
	maps := b.mapsInput(s)
	params := b.declareParams(ps)
	logits, features := b.forward(s, maps, params, "")
	b.output(LogitsOutput, logits, onnxpb.TensorProto_FLOAT)
	b.output(ProbsOutput, b.node("Softmax", []string{logits}, b.shape(logits), onnxgraph.AttrInt("axis", 1)), onnxpb.TensorProto_FLOAT)
	b.output(FeaturesOutput, features, onnxpb.TensorProto_FLOAT)
	return b.finish(s, ps, nil, "tlearn block5 + head evaluation"), nil
}

func (b *graphBuilder) finish(s Spec, ps []Param, moments []string, doc string) *Graph {
	tg := &Graph{Model: b.model(doc), Spec: s, Params: ps, Moments: moments}
	for _, v := range b.g.Input {
		tg.Inputs = append(tg.Inputs, v.GetName())
	}
	for _, v := range b.g.Output {
		tg.Outputs = append(tg.Outputs, v.GetName())
	}
	return tg
}
