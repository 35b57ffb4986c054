package traingraph

import (
	"slices"

	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// gradRules maps each differentiable op of the training graph to the rule
// that emits its gradient. An op is a layer of the forward pass as the
// builder writes it (one "Conv3x3" is a Pad, nine Slices, a Concat and a
// Gemm in ONNX); supporting another backbone means adding its ops here
// (BatchNormalization, Clip, depthwise Conv) together with a forward emitter.
var gradRules = map[string]gradRule{
	"Conv3x3":             convGrad,
	"Relu":                reluGrad,
	"MaxPool2x2":          maxPoolGrad,
	"GlobalAveragePool":   gapGrad,
	"Gemm":                gemmGrad,
	"MatMul":              matMulGrad,
	"Add":                 addGrad,
	"Mul":                 mulGrad,
	"SoftmaxCrossEntropy": softmaxCrossEntropyGrad,
}

func (b *graphBuilder) relu(x string) string {
	y := b.node("Relu", []string{x}, b.shape(x))
	b.record("Relu", []string{x}, []string{y}, nil)
	return y
}

// reluGrad passes the gradient where the output is positive (Relu'(0) = 0,
// as PyTorch).
func reluGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	y := n.out[0]
	pos := b.node("Greater", []string{y, b.constFloat(0)}, b.shape(y))
	return []string{b.node("Where", []string{pos, dOut[0], b.constFloat(0)}, b.shape(y))}
}

// gemm is a dense layer a [B,D] · w [D,N] + bias [N] (Keras layout).
func (b *graphBuilder) gemm(a, w, bias string) string {
	y := b.node("Gemm", []string{a, w, bias}, []int64{b.shape(a)[0], b.shape(w)[1]})
	b.record("Gemm", []string{a, w, bias}, []string{y}, nil)
	return y
}

func gemmGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	a, w := n.in[0], n.in[1]
	dy := dOut[0]
	d := make([]string, 3)
	if need[0] {
		d[0] = b.node("Gemm", []string{dy, w}, b.shape(a), onnxgraph.AttrInt("transB", 1))
	}
	if need[1] {
		d[1] = b.node("Gemm", []string{a, dy}, b.shape(w), onnxgraph.AttrInt("transA", 1))
	}
	if need[2] {
		d[2] = b.node("ReduceSum", []string{dy, b.constInts(0)}, []int64{b.shape(w)[1]}, onnxgraph.AttrInt("keepdims", 0))
	}
	return d
}

// matMul is a 2-D product a [M,K] · w [K,N].
func (b *graphBuilder) matMul(a, w string) string {
	y := b.node("MatMul", []string{a, w}, []int64{b.shape(a)[0], b.shape(w)[1]})
	b.record("MatMul", []string{a, w}, []string{y}, nil)
	return y
}

func matMulGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	d := make([]string, 2)
	if need[0] {
		d[0] = b.node("Gemm", []string{dOut[0], n.in[1]}, b.shape(n.in[0]), onnxgraph.AttrInt("transB", 1))
	}
	if need[1] {
		d[1] = b.node("Gemm", []string{n.in[0], dOut[0]}, b.shape(n.in[1]), onnxgraph.AttrInt("transA", 1))
	}
	return d
}

// add and mul are element-wise with NumPy broadcasting.
func (b *graphBuilder) add(x, y string) string {
	z := b.node("Add", []string{x, y}, broadcastShape(b.shape(x), b.shape(y)))
	b.record("Add", []string{x, y}, []string{z}, nil)
	return z
}

func (b *graphBuilder) mul(x, y string) string {
	z := b.node("Mul", []string{x, y}, broadcastShape(b.shape(x), b.shape(y)))
	b.record("Mul", []string{x, y}, []string{z}, nil)
	return z
}

func addGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	d := make([]string, 2)
	for i := range d {
		if need[i] {
			d[i] = b.sumTo(dOut[0], b.shape(n.in[i]))
		}
	}
	return d
}

func mulGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	d := make([]string, 2)
	for i := range d {
		if need[i] {
			other := n.in[1-i]
			p := b.node("Mul", []string{dOut[0], other}, b.shape(n.out[0]))
			d[i] = b.sumTo(p, b.shape(n.in[i]))
		}
	}
	return d
}

// broadcastShape is NumPy's broadcast of two static shapes.
func broadcastShape(x, y []int64) []int64 {
	if len(x) < len(y) {
		x, y = y, x
	}
	out := slices.Clone(x)
	off := len(x) - len(y)
	for i, d := range y {
		if out[off+i] == 1 {
			out[off+i] = d
		}
	}
	return out
}

// sumTo reduces a broadcast gradient d back to shape to: sums over the
// leading axes to lacks and over the axes where to has size 1.
func (b *graphBuilder) sumTo(d string, to []int64) string {
	from := b.shape(d)
	if slices.Equal(from, to) {
		return d
	}
	off := len(from) - len(to)
	var axes []int64
	for i := range from {
		if i < off || (to[i-off] == 1 && from[i] != 1) {
			axes = append(axes, int64(i))
		}
	}
	kept := slices.Clone(from)
	for _, a := range axes {
		kept[a] = 1
	}
	r := d
	if len(axes) > 0 {
		r = b.node("ReduceSum", []string{d, b.constInts(axes...)}, kept, onnxgraph.AttrInt("keepdims", 1))
	}
	if len(to) == len(kept) {
		return r
	}
	return b.node("Reshape", []string{r, b.constInts(to...)}, to)
}

// softmaxCrossEntropy is the mean over the batch of −Σₖ labelsₖ·log
// softmax(logits)ₖ, with labels one-hot (or any distribution) [B,K]. The
// loss has shape [1].
func (b *graphBuilder) softmaxCrossEntropy(logits, labels string) string {
	s := b.shape(logits)
	logp := b.node("LogSoftmax", []string{logits}, s, onnxgraph.AttrInt("axis", 1))
	prod := b.node("Mul", []string{labels, logp}, s)
	sum := b.node("ReduceSum", []string{prod, b.constInts(1)}, []int64{s[0]}, onnxgraph.AttrInt("keepdims", 0))
	mean := b.node("ReduceMean", []string{sum}, []int64{1}, onnxgraph.AttrInts("axes", 0), onnxgraph.AttrInt("keepdims", 1))
	loss := b.node("Neg", []string{mean}, []int64{1})
	b.record("SoftmaxCrossEntropy", []string{logits, labels}, []string{loss}, map[string]string{"logp": logp})
	return loss
}

// softmaxCrossEntropyGrad: d loss / d logits = (softmax·Σₖlabelsₖ −
// labels) / B, which is (softmax − labels)/B for one-hot or smoothed
// labels and stays right for class-weighted ones (labels scaled by the
// example's weight).
func softmaxCrossEntropyGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	logits, labels := n.in[0], n.in[1]
	s := b.shape(logits)
	p := b.node("Exp", []string{n.saved["logp"]}, s)
	mass := b.node("ReduceSum", []string{labels, b.constInts(1)}, []int64{s[0], 1}, onnxgraph.AttrInt("keepdims", 1))
	diff := b.node("Sub", []string{b.node("Mul", []string{p, mass}, s), labels}, s)
	bs := b.node("Shape", []string{logits}, []int64{1}, onnxgraph.AttrInt("start", 0), onnxgraph.AttrInt("end", 1))
	bf := b.node("Cast", []string{bs}, []int64{1}, onnxgraph.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	sc := b.node("Div", []string{dOut[0], bf}, []int64{1})
	d := make([]string, 2)
	if need[0] {
		d[0] = b.node("Mul", []string{diff, sc}, s)
	}
	if need[1] {
		// Labels are inputs and never need this, but the rule stays complete.
		nl := b.node("Neg", []string{n.saved["logp"]}, s)
		d[1] = b.node("Mul", []string{nl, sc}, s)
	}
	return d
}
