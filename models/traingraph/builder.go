package traingraph

import (
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// trainOpset is the ONNX opset of the generated training graphs: ReduceSum
// takes its axes as an input (13+), ReduceMean and ReduceMax as an
// attribute (before 18). Every op used here has a CPU and a CUDA kernel in
// ONNX Runtime.
const trainOpset = 17

// batchDim marks the symbolic batch dimension in the builder's static shapes.
const batchDim = -1

// graphBuilder appends nodes to an ONNX graph and records the differentiable
// ones on a tape, so that backward can emit the gradient graph from the
// gradRules table. It tracks every value's static shape (batchDim for the
// batch), which the rules need for reshapes and broadcast reductions.
type graphBuilder struct {
	g      *onnxpb.GraphProto
	shapes map[string][]int64
	seq    int
	consts map[string]string
	tape   []*tapeNode
	// needGrad holds the values whose gradient backward must compute: the
	// trainable parameters and everything computed from them.
	needGrad map[string]bool
	// form and sliceIm2col choose the convolution formulation (benchmarks
	// compare them; graphs use the zero values).
	form        convForm
	sliceIm2col bool
	// scope prefixes node names ("forward", "backward/Conv3x3",
	// "update"), so that ORT's profiles group by phase.
	scope string
}

// tapeNode is one differentiable forward op: the rule for op turns the
// gradients of out into gradients of in. saved holds values the forward
// computed for the backward's use (an im2col matrix, a pooling mask).
type tapeNode struct {
	op    string
	in    []string
	out   []string
	saved map[string]string
}

func newGraphBuilder(name string) *graphBuilder {
	return &graphBuilder{
		g:        &onnxpb.GraphProto{Name: proto.String(name)},
		shapes:   make(map[string][]int64),
		consts:   make(map[string]string),
		needGrad: make(map[string]bool),
	}
}

// model wraps the graph into a model that ONNX Runtime loads.
func (b *graphBuilder) model(doc string) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("tlearn"),
		DocString:    proto.String(doc),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(trainOpset)}},
		Graph:        b.g,
	}
}

func (b *graphBuilder) fresh(hint string) string {
	b.seq++
	return hint + "_" + strconv.Itoa(b.seq)
}

func (b *graphBuilder) shape(v string) []int64 {
	s, ok := b.shapes[v]
	if !ok {
		panic(fmt.Sprintf("traingraph: graph builder: no shape for %q", v))
	}
	return s
}

// valueInfo describes a graph input or output; dims equal to batchDim
// become the symbolic dimension "batch".
func valueInfo(name string, elem onnxpb.TensorProto_DataType, dims []int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d == batchDim {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)),
			Shape:    shape,
		}}},
	}
}

// input declares a graph input.
func (b *graphBuilder) input(name string, elem onnxpb.TensorProto_DataType, dims []int64) string {
	b.g.Input = append(b.g.Input, valueInfo(name, elem, dims))
	b.shapes[name] = slices.Clone(dims)
	return name
}

// output declares v as the graph output name. A value that already carries
// the name is used as is; otherwise an Identity renames it (ONNX Runtime
// removes such Identities when it optimizes the graph).
func (b *graphBuilder) output(name, v string, elem onnxpb.TensorProto_DataType) {
	dims := b.shape(v)
	if v != name {
		b.nodeTo("Identity", []string{v}, []string{name})
		b.shapes[name] = dims
	}
	b.g.Output = append(b.g.Output, valueInfo(name, elem, dims))
}

// nodeTo appends a node with the given output names.
func (b *graphBuilder) nodeTo(op string, in, out []string, attrs ...*onnxpb.AttributeProto) {
	name := b.fresh(op)
	if b.scope != "" {
		name = b.scope + "/" + name
	}
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{
		Name:      proto.String(name),
		OpType:    proto.String(op),
		Input:     in,
		Output:    out,
		Attribute: attrs,
	})
}

// node appends a one-output node and records its static shape.
func (b *graphBuilder) node(op string, in []string, shape []int64, attrs ...*onnxpb.AttributeProto) string {
	out := b.fresh(op)
	b.nodeTo(op, in, []string{out}, attrs...)
	b.shapes[out] = slices.Clone(shape)
	return out
}

// nodeNamed appends a one-output node whose output is name (a graph
// output), so that the value lands in the caller's tensor without a copy.
func (b *graphBuilder) nodeNamed(op string, in []string, name string, shape []int64, attrs ...*onnxpb.AttributeProto) string {
	b.nodeTo(op, in, []string{name}, attrs...)
	b.shapes[name] = slices.Clone(shape)
	return name
}

// sharedConst returns the initializer stored under key, or adds t (named
// prefix_N) with its shape: equal constants are stored once per graph.
func (b *graphBuilder) sharedConst(key, prefix string, dims []int64, t func(name string) *onnxpb.TensorProto) string {
	if name, ok := b.consts[key]; ok {
		return name
	}
	name := b.fresh(prefix)
	b.g.Initializer = append(b.g.Initializer, t(name))
	b.consts[key] = name
	b.shapes[name] = dims
	return name
}

// constInts is a shared 1-D int64 initializer (shapes, axes, pads).
func (b *graphBuilder) constInts(v ...int64) string {
	dims := []int64{int64(len(v))}
	return b.sharedConst(fmt.Sprint("i", v), "const_ints", dims, func(name string) *onnxpb.TensorProto {
		return models.NewTensorInt64(name, dims, v)
	})
}

// constFloat is a shared scalar float32 initializer.
func (b *graphBuilder) constFloat(v float32) string {
	return b.sharedConst(fmt.Sprint("f", v), "const_float", []int64{}, func(name string) *onnxpb.TensorProto {
		return models.NewTensorFloat32(name, nil, []float32{v})
	})
}

// record puts a differentiable op on the tape when one of its inputs needs
// a gradient, and marks its outputs as needing one too.
func (b *graphBuilder) record(op string, in, out []string, saved map[string]string) {
	need := false
	for _, v := range in {
		need = need || b.needGrad[v]
	}
	if !need {
		return
	}
	for _, v := range out {
		b.needGrad[v] = true
	}
	b.tape = append(b.tape, &tapeNode{op: op, in: in, out: out, saved: saved})
}

// gradRule emits the gradient of a tape node: given the gradients of its
// outputs (dOut[i] == "" when an output received none) it returns one
// gradient per input, "" where need[i] is false.
type gradRule func(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string

// backward emits the gradient of the scalar loss with respect to every
// value in wrt (which must need a gradient) and returns them in order.
// Gradients that reach a value along several paths are summed.
func (b *graphBuilder) backward(loss string, wrt []string) []string {
	grads := map[string]string{loss: b.constFloat(1)}
	for i := len(b.tape) - 1; i >= 0; i-- {
		n := b.tape[i]
		dOut := make([]string, len(n.out))
		any := false
		for j, o := range n.out {
			dOut[j] = grads[o]
			any = any || dOut[j] != ""
		}
		if !any {
			continue
		}
		need := make([]bool, len(n.in))
		for j, v := range n.in {
			need[j] = b.needGrad[v]
		}
		rule, ok := gradRules[n.op]
		if !ok {
			panic(fmt.Sprintf("traingraph: no gradient rule for %s", n.op))
		}
		outer := b.scope
		b.scope = "backward/" + n.op
		dIn := rule(b, n, dOut, need)
		b.scope = outer
		for j, d := range dIn {
			if d == "" || !need[j] {
				continue
			}
			v := n.in[j]
			if prev, ok := grads[v]; ok {
				grads[v] = b.node("Add", []string{prev, d}, b.shape(v))
			} else {
				grads[v] = d
			}
		}
	}
	out := make([]string, len(wrt))
	for i, v := range wrt {
		g, ok := grads[v]
		if !ok {
			panic(fmt.Sprintf("traingraph: %q does not reach the loss", v))
		}
		out[i] = g
	}
	return out
}
