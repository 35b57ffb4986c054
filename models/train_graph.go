package models

import (
	"errors"
	"fmt"

	"github.com/tlearn/tlearn/models/onnxpb"
)

// Names of the training and evaluation graphs' data inputs and outputs.
// Parameters keep the names of the run folder's weights file
// (block5_conv1.weight, hidden.bias, ...); see TrainParam for their layout.
const (
	TrainMapsInput   = "maps"         // [B,C,h,w] block4_pool maps, float16 (or float32, TrainGraphSpec.MapsFloat32)
	TrainLabelsInput = "labels"       // [B,K] float32 one-hot (or any distribution)
	TrainMaskInput   = "dropout_mask" // [B,H] float32: 0 or 1/(1−p), present when TrainGraphSpec.Dropout
	TrainLossOutput  = "loss"         // [1] mean cross-entropy over the batch
	LogitsOutput     = "logits"       // [B,K]
	ProbsOutput      = "probs"        // [B,K] softmax, eval graph only
	// AdamVScaleInput is 1/√(1−β2ᵗ), Adam's second-moment bias correction
	// for step t (counted from 1), shape [1].
	AdamVScaleInput = "adam.v_scale"
	// L2Input is the coupled L2 factor λ (TrainGraphSpec.L2), shape [1]:
	// λ·θ is added to the gradient of every kernel (not the biases).
	L2Input = "l2"
	// FeaturesOutput of the eval graph: the head's input, GAP of the
	// pooled block5 output [B,C].
	EvalFeaturesOutput = "features"
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
// shape [1] (present when TrainGraphSpec.WeightDecay).
func DecayInput(group string) string { return "decay." + group }

// MomentName names an optimizer state tensor of a parameter: "m" (Adam's
// first moment, SGD's momentum buffer) or "v" (Adam's second moment).
func MomentName(param, moment string) string { return param + "." + moment }

// NextName names the output that holds the updated value of a parameter
// or moment input.
func NextName(input string) string { return input + ".new" }

// Block5WeightName and Block5BiasName name block5's convolutions, i = 1..3.
func Block5WeightName(i int) string { return fmt.Sprintf("block5_conv%d.weight", i) }
func Block5BiasName(i int) string   { return fmt.Sprintf("block5_conv%d.bias", i) }

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

// TrainGraphSpec fully describes a generated training graph. It has no
// defaults (head.FineTuneSettings has them): every field means what it
// says, zero included.
type TrainGraphSpec struct {
	// Channels, Height and Width are the block4_pool maps' shape [C,h,w];
	// block5 keeps C channels (512 for VGG16, fewer for test models).
	Channels, Height, Width int
	Hidden                  int  // hidden Dense units; 0 = no hidden layer
	Classes                 int  // K ≥ 2
	Dropout                 bool // the graph takes TrainMaskInput, multiplied after the hidden layer (or the features)
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

	// form and sliceIm2col pick another convolution formulation, for the
	// benchmarks that compare them.
	form        convForm
	sliceIm2col bool
}

// TrainParam is one parameter input of a training or evaluation graph.
// Convolution weights are in the graph's Layout (FromTorchvision and
// ToTorchvision convert); dense weights are Keras' [in,out].
type TrainParam struct {
	Name      string
	Shape     []int64
	Layout    string // LayoutOIHW or LayoutOHWI for convolution weights, "" otherwise
	Group     string // GroupBlock5 or GroupHead
	Trainable bool   // false for block5 when frozen
}

// Kernel reports whether p is a weight matrix or convolution kernel
// rather than a bias.
func (p TrainParam) Kernel() bool { return len(p.Shape) >= 2 }

// Size is the number of values.
func (p TrainParam) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= int(d)
	}
	return n
}

// TrainGraph is a generated graph with its interface.
type TrainGraph struct {
	Model   *onnxpb.ModelProto
	Spec    TrainGraphSpec
	Params  []TrainParam // every parameter input, in input order
	Moments []string     // optimizer moments per trainable parameter: none, "m", or "m" and "v"
	Inputs  []string     // every graph input, in order
	Outputs []string     // every graph output, in order
}

// ErrTrainSpec is wrapped by errors about an impossible TrainGraphSpec.
var ErrTrainSpec = errors.New("models: bad training graph settings")

func (s TrainGraphSpec) validate() error {
	switch {
	case s.Channels <= 0 || s.Height < 2 || s.Width < 2:
		return fmt.Errorf("%w: maps [%d,%d,%d] (block5 needs at least 2×2 maps)", ErrTrainSpec, s.Channels, s.Height, s.Width)
	case s.Hidden < 0:
		return fmt.Errorf("%w: hidden %d", ErrTrainSpec, s.Hidden)
	case s.Classes < 2:
		return fmt.Errorf("%w: %d classes", ErrTrainSpec, s.Classes)
	case s.Optimizer != OptimizerAdam && s.Optimizer != OptimizerSGD:
		return fmt.Errorf("%w: optimizer %q (want %s or %s)", ErrTrainSpec, s.Optimizer, OptimizerAdam, OptimizerSGD)
	case s.Momentum < 0 || s.Momentum >= 1:
		return fmt.Errorf("%w: momentum %g", ErrTrainSpec, s.Momentum)
	}
	return nil
}

// TrainParams lists the parameters of spec in graph input order: block5's
// three convolutions, then the head.
func (s TrainGraphSpec) TrainParams() []TrainParam {
	c := int64(s.Channels)
	layout := s.form.effective(s.Height, s.Width).weightLayout()
	wshape := weightShape(layout, c)
	var ps []TrainParam
	for i := 1; i <= 3; i++ {
		ps = append(ps,
			TrainParam{Block5WeightName(i), wshape, layout, GroupBlock5, !s.FreezeBlock5},
			TrainParam{Block5BiasName(i), []int64{c}, "", GroupBlock5, !s.FreezeBlock5})
	}
	in := c
	if s.Hidden > 0 {
		h := int64(s.Hidden)
		ps = append(ps,
			TrainParam{HiddenWeight, []int64{c, h}, "", GroupHead, true},
			TrainParam{HiddenBias, []int64{h}, "", GroupHead, true})
		in = h
	}
	k := int64(s.Classes)
	return append(ps,
		TrainParam{OutputWeight, []int64{in, k}, "", GroupHead, true},
		TrainParam{OutputBias, []int64{k}, "", GroupHead, true})
}

// MaskWidth is the dropout mask's second dimension: the hidden size, or C
// without a hidden layer.
func (s TrainGraphSpec) MaskWidth() int {
	if s.Hidden > 0 {
		return s.Hidden
	}
	return s.Channels
}

func (s TrainGraphSpec) moments() []string {
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
func (b *graphBuilder) forward(s TrainGraphSpec, maps string, params map[string]string, mask string) (logits, features string) {
	c, h, w := int64(s.Channels), int64(s.Height), int64(s.Width)
	x := maps
	if !b.form.nchw() {
		// Transposing before the Cast moves half the bytes.
		x = b.node("Transpose", []string{maps}, []int64{batchDim, h, w, c}, attrInts("perm", 0, 2, 3, 1))
	}
	if !s.MapsFloat32 {
		x = b.node("Cast", []string{x}, b.shape(x), attrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	}
	for i := 1; i <= 3; i++ {
		x = b.relu(b.conv3x3(x, params[Block5WeightName(i)], params[Block5BiasName(i)]))
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

func (b *graphBuilder) mapsInput(s TrainGraphSpec) string {
	elem := onnxpb.TensorProto_FLOAT16
	if s.MapsFloat32 {
		elem = onnxpb.TensorProto_FLOAT
	}
	return b.input(TrainMapsInput, elem, []int64{batchDim, int64(s.Channels), int64(s.Height), int64(s.Width)})
}

// declareParams adds every parameter input and returns name → value.
func (b *graphBuilder) declareParams(ps []TrainParam) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Name] = b.input(p.Name, onnxpb.TensorProto_FLOAT, p.Shape)
		if p.Trainable {
			b.needGrad[p.Name] = true
		}
	}
	return m
}

// BuildTrainStep generates the train-step graph: one forward and backward
// pass over a batch and one optimizer update. Inputs, in order: maps,
// labels, the dropout mask (when spec.Dropout), the step size of each
// trainable group (LRInput, block5 first), AdamVScaleInput (Adam), the
// decay factors (DecayInput, with WeightDecay), L2Input (with L2), every
// parameter
// (TrainParams order), then the moments of every trainable parameter
// (MomentName, "m" before "v"). Outputs: loss, logits, then for every
// trainable parameter NextName of itself followed by those of its moments.
// TrainGraph.Inputs and Outputs list the same.
func BuildTrainStep(s TrainGraphSpec) (*TrainGraph, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := newGraphBuilder("tlearn_train_step")
	b.form, b.sliceIm2col = s.form.effective(s.Height, s.Width), s.sliceIm2col
	ps := s.TrainParams()
	maps := b.mapsInput(s)
	labels := b.input(TrainLabelsInput, onnxpb.TensorProto_FLOAT, []int64{batchDim, int64(s.Classes)})
	mask := ""
	if s.Dropout {
		mask = b.input(TrainMaskInput, onnxpb.TensorProto_FLOAT, []int64{batchDim, int64(s.MaskWidth())})
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
	var trainable []TrainParam
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
	b.output(TrainLossOutput, loss, onnxpb.TensorProto_FLOAT)
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
func (b *graphBuilder) update(s TrainGraphSpec, p TrainParam, g string, mom []string, lr, vscale, decay string) {
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

// BuildEval generates the evaluation graph: the forward pass without
// dropout. Inputs: maps, then every parameter (TrainParams order; training
// settings such as FreezeBlock5 do not matter). Outputs: logits, probs and
// features (the head's input).
func BuildEval(s TrainGraphSpec) (*TrainGraph, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := newGraphBuilder("tlearn_eval")
	b.form, b.sliceIm2col = s.form.effective(s.Height, s.Width), s.sliceIm2col
	ps := s.TrainParams()
	maps := b.mapsInput(s)
	params := b.declareParams(ps)
	logits, features := b.forward(s, maps, params, "")
	b.output(LogitsOutput, logits, onnxpb.TensorProto_FLOAT)
	b.output(ProbsOutput, b.node("Softmax", []string{logits}, b.shape(logits), attrInt("axis", 1)), onnxpb.TensorProto_FLOAT)
	b.output(EvalFeaturesOutput, features, onnxpb.TensorProto_FLOAT)
	return b.finish(s, ps, nil, "tlearn block5 + head evaluation"), nil
}

func (b *graphBuilder) finish(s TrainGraphSpec, ps []TrainParam, moments []string, doc string) *TrainGraph {
	tg := &TrainGraph{Model: b.model(doc), Spec: s, Params: ps, Moments: moments}
	for _, v := range b.g.Input {
		tg.Inputs = append(tg.Inputs, v.GetName())
	}
	for _, v := range b.g.Output {
		tg.Outputs = append(tg.Outputs, v.GetName())
	}
	return tg
}
