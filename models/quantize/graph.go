package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Sentinel errors; returned errors wrap them.
var (
	// ErrQuantized is wrapped when the model is quantized already.
	ErrQuantized = errors.New("quantize: the model is quantized already")
	// ErrUnsupported is wrapped when the graph holds an op, or a pattern
	// of ops, that the quantizer does not handle; the error names the node.
	ErrUnsupported = errors.New("quantize: unsupported graph")
)

// minOpset is the default-domain opset of the quantized graph:
// DequantizeLinear takes per-axis scales from opset 13 on.
const minOpset = 13

// passOps are the ops that stay float32 and pass through: the input's
// layout Transpose, the pooled features' GlobalAveragePool and Flatten,
// the maps' Identity, and the Identity and Constant nodes by which
// exporters share weights.
var passOps = map[string]bool{"Transpose": true, "GlobalAveragePool": true, "Flatten": true, "Identity": true, "Constant": true}

// quantizedOps mark a graph that is quantized already.
var quantizedOps = map[string]bool{
	"QuantizeLinear": true, "DequantizeLinear": true, "DynamicQuantizeLinear": true, "QLinearConv": true,
	"ConvInteger": true, "MatMulInteger": true, "QLinearMatMul": true, "QLinearAdd": true,
}

// plan is what the quantizer found in a float32 graph: which tensors
// need a range, and which of those are unsigned (Relu outputs, min 0).
type plan struct {
	// ranged are the tensors whose min/max calibration measures, in graph
	// order: the Relu outputs, and the data inputs of convolutions that no
	// Relu or MaxPool writes (the input image).
	ranged []string
	relu   map[string]bool // ranged tensors that a Relu writes
	convs  int
}

// analyse checks that every node of m's graph is one the quantizer
// handles and returns the plan. Errors name the node and its op.
func analyse(m *onnxpb.ModelProto) (*plan, error) {
	g := m.GetGraph()
	producer := map[string]*onnxpb.NodeProto{}
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
		for _, in := range n.Input {
			consumers[in] = append(consumers[in], n)
		}
	}
	for _, t := range g.Initializer {
		if dt := onnxpb.TensorProto_DataType(t.GetDataType()); dt == onnxpb.TensorProto_INT8 || dt == onnxpb.TensorProto_UINT8 {
			return nil, fmt.Errorf("%w: initializer %q is %s", ErrQuantized, t.GetName(), dt)
		}
	}
	p := &plan{relu: map[string]bool{}}
	seen := map[string]bool{}
	add := func(t string, relu bool) {
		if !seen[t] {
			seen[t] = true
			p.ranged = append(p.ranged, t)
			p.relu[t] = relu
		}
	}
	for _, n := range g.Node {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("%w: node %s is %s of domain %s; the quantizer handles Conv, Relu and MaxPool (VGG-family graphs)", ErrUnsupported, nodeName(n), op, d)
		}
		switch {
		case quantizedOps[op]:
			return nil, fmt.Errorf("%w: node %s is a %s", ErrQuantized, nodeName(n), op)
		case op == "Conv":
			if len(n.Input) < 2 {
				return nil, fmt.Errorf("%w: Conv node %s has no weight", ErrUnsupported, nodeName(n))
			}
			for j, what := range []string{"weight", "bias"} {
				if 1+j >= len(n.Input) || n.Input[1+j] == "" {
					continue
				}
				if _, ok := models.Initializer(m, n.Input[1+j]); !ok {
					return nil, fmt.Errorf("%w: Conv node %s: its %s %q is not a constant", ErrUnsupported, nodeName(n), what, n.Input[1+j])
				}
			}
			x := n.Input[0]
			if pr := producer[x]; pr == nil || (pr.GetOpType() != "Relu" && pr.GetOpType() != "MaxPool") {
				add(x, false)
			}
			cs := consumers[n.Output[0]]
			if len(cs) != 1 || cs[0].GetOpType() != "Relu" || slices.Contains(graphOutputs(g), n.Output[0]) {
				return nil, fmt.Errorf("%w: the output of Conv node %s does not go to one Relu alone; the quantizer handles Conv→Relu chains (VGG)", ErrUnsupported, nodeName(n))
			}
			p.convs++
		case op == "Relu":
			add(n.Output[0], true)
		case op == "MaxPool":
			pr := producer[n.Input[0]]
			if pr == nil || (pr.GetOpType() != "Relu" && pr.GetOpType() != "MaxPool") {
				return nil, fmt.Errorf("%w: MaxPool node %s does not follow a Relu; the quantizer pools only quantized activations", ErrUnsupported, nodeName(n))
			}
			if len(n.Output) > 1 && n.Output[1] != "" {
				return nil, fmt.Errorf("%w: MaxPool node %s has an Indices output", ErrUnsupported, nodeName(n))
			}
		case passOps[op]:
		default:
			return nil, fmt.Errorf("%w: node %s is a %s; the quantizer handles Conv, Relu and MaxPool (VGG-family graphs) and passes Transpose, GlobalAveragePool, Flatten and Identity", ErrUnsupported, nodeName(n), op)
		}
	}
	if p.convs == 0 {
		return nil, fmt.Errorf("%w: the graph has no Conv", ErrUnsupported)
	}
	return p, nil
}

func graphOutputs(g *onnxpb.GraphProto) []string {
	var out []string
	for _, o := range g.Output {
		out = append(out, o.GetName())
	}
	return out
}

func nodeName(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%q", n.GetName())
	}
	if len(n.Output) > 0 {
		return fmt.Sprintf("writing %q", n.Output[0])
	}
	return "(unnamed)"
}

// minMax is the measured min and max of one tensor.
type minMax struct{ Min, Max float32 }

// calibrationModel is m with, for each ranged tensor t, the outputs
// "t/min" and "t/max" (ReduceMin and ReduceMax over all its elements,
// one value each) in place of m's own outputs; names[i] are the outputs of
// p.ranged[i] (min then max; min is "" for a Relu output, whose min is 0).
func calibrationModel(m *onnxpb.ModelProto, p *plan) (*onnxpb.ModelProto, [][2]string) {
	c := proto.Clone(m).(*onnxpb.ModelProto)
	g := c.Graph
	names := onnxgraph.Names(g)
	g.Output = nil
	out := make([][2]string, len(p.ranged))
	for i, t := range p.ranged {
		ops := []string{"ReduceMin", "ReduceMax"}
		for k, op := range ops {
			if k == 0 && p.relu[t] {
				continue
			}
			o := onnxgraph.Unique(names, fmt.Sprintf("tlearn_calibration_%d_%s", i, op))
			// keepdims: onnxruntime_go fails on rank-0 outputs of a
			// dynamic session; [1,1,1,1] holds the one value as well.
			g.Node = append(g.Node, onnxgraph.Node(op, o, []string{t}, []string{o}, onnxgraph.AttrInt("keepdims", 1)))
			g.Output = append(g.Output, onnxgraph.ValueInfo(o, onnxpb.TensorProto_FLOAT, nil))
			out[i][k] = o
		}
	}
	onnxgraph.Prune(g)
	return c, out
}

// qparams are the scale and zero point of a uint8 activation tensor.
type qparams struct {
	scale float32
	zero  uint8
}

// activationParams maps a tensor's range to uint8: a Relu output (min 0)
// gets zero point 0 and scale max/255; any other tensor the asymmetric
// scale (max−min)/255 over a range widened to hold 0, and the zero point
// that puts 0 on an integer.
func activationParams(r minMax, relu bool) qparams {
	lo, hi := float64(min(r.Min, 0)), float64(max(r.Max, 0))
	if relu {
		lo = 0
	}
	s := (hi - lo) / 255
	if !(s > 0) || math.IsInf(s, 0) {
		return qparams{scale: 1}
	}
	z := math.Round(-lo / s)
	return qparams{scale: float32(s), zero: uint8(max(0, min(255, z)))}
}

// builder rewrites a float32 graph into its QDQ form.
type builder struct {
	m      *onnxpb.ModelProto
	g      *onnxpb.GraphProto
	names  map[string]bool
	ranges map[string]minMax
	plan   *plan
	nodes  []*onnxpb.NodeProto
	dq     map[string]string  // float tensor → its dequantized twin
	qp     map[string]qparams // dequantized twin → its params
	// convWeights maps each quantized Conv's original weight and bias
	// names to their dequantized int8/int32 twins.
	convWeights map[string]string
}

// build returns the QDQ graph of m (which it does not modify) for the
// measured ranges, and the names of the dequantized twins of each Conv's
// float weight and bias initializers.
func build(m *onnxpb.ModelProto, p *plan, ranges map[string]minMax) (*onnxpb.ModelProto, map[string]string, error) {
	out := proto.Clone(m).(*onnxpb.ModelProto)
	b := &builder{
		m: out, g: out.Graph, names: onnxgraph.Names(out.Graph), ranges: ranges, plan: p,
		dq: map[string]string{}, qp: map[string]qparams{}, convWeights: map[string]string{},
	}
	for _, n := range b.g.Node {
		if err := b.node(n); err != nil {
			return nil, nil, err
		}
	}
	// A graph output keeps its own float32 tensor: the Relu or MaxPool
	// that wrote it still does.
	b.g.Node = b.nodes
	onnxgraph.Prune(b.g)
	setOpset(out)
	return out, b.convWeights, nil
}

func (b *builder) node(n *onnxpb.NodeProto) error {
	switch n.GetOpType() {
	case "Conv":
		return b.conv(n)
	case "Relu":
		b.nodes = append(b.nodes, n)
		r, ok := b.ranges[n.Output[0]]
		if !ok {
			return fmt.Errorf("quantize: no calibrated range for %q", n.Output[0])
		}
		b.qdq(n.Output[0], activationParams(r, true))
	case "MaxPool":
		in, ok := b.dq[n.Input[0]]
		if !ok {
			return fmt.Errorf("%w: MaxPool node %s takes %q, which is not quantized", ErrUnsupported, nodeName(n), n.Input[0])
		}
		n.Input[0] = in
		b.nodes = append(b.nodes, n)
		// The same scale and zero point in and out: ORT then pools the
		// uint8 tensor itself.
		b.qdq(n.Output[0], b.qp[in])
	default:
		for i, in := range n.Input {
			if d, ok := b.dq[in]; ok {
				n.Input[i] = d
			}
		}
		b.nodes = append(b.nodes, n)
	}
	return nil
}

// dequantizedPerChannel stores the quantized initializer raw (of elem, with
// dims) beside the float initializer name, with per-output-channel scales
// (axis 0) and zero points 0, appends its DequantizeLinear and records the
// float twin in convWeights; it returns that twin's name.
func (b *builder) dequantizedPerChannel(name, suffix string, elem onnxpb.TensorProto_DataType, dims []int64, raw []byte, scales []float32) string {
	c, size := len(scales), 1 // bytes per element: int8
	if elem == onnxpb.TensorProto_INT32 {
		size = 4
	}
	q := onnxgraph.Unique(b.names, name+"/"+suffix)
	scale := onnxgraph.Unique(b.names, name+"/scale")
	zero := onnxgraph.Unique(b.names, name+"/zero_point")
	dq := onnxgraph.Unique(b.names, name+"/dequantized")
	b.g.Initializer = append(b.g.Initializer,
		&onnxpb.TensorProto{Name: proto.String(q), Dims: slices.Clone(dims), DataType: proto.Int32(int32(elem)), RawData: raw},
		models.NewTensorFloat32(scale, []int64{int64(c)}, scales),
		&onnxpb.TensorProto{Name: proto.String(zero), Dims: []int64{int64(c)}, DataType: proto.Int32(int32(elem)), RawData: make([]byte, size*c)})
	b.nodes = append(b.nodes, onnxgraph.Node("DequantizeLinear", dq, []string{q, scale, zero}, []string{dq}, onnxgraph.AttrInt("axis", 0)))
	b.convWeights[name] = dq
	return dq
}

// qdq appends QuantizeLinear and DequantizeLinear of tensor t with params
// q and records the dequantized twin.
func (b *builder) qdq(t string, q qparams) {
	scale := onnxgraph.Unique(b.names, t+"/scale")
	zero := onnxgraph.Unique(b.names, t+"/zero_point")
	b.g.Initializer = append(b.g.Initializer,
		models.NewTensorFloat32(scale, nil, []float32{q.scale}),
		&onnxpb.TensorProto{Name: proto.String(zero), DataType: proto.Int32(int32(onnxpb.TensorProto_UINT8)), RawData: []byte{q.zero}})
	qt := onnxgraph.Unique(b.names, t+"/quantized")
	dt := onnxgraph.Unique(b.names, t+"/dequantized")
	b.nodes = append(b.nodes,
		onnxgraph.Node("QuantizeLinear", qt, []string{t, scale, zero}, []string{qt}),
		onnxgraph.Node("DequantizeLinear", dt, []string{qt, scale, zero}, []string{dt}))
	b.dq[t] = dt
	b.qp[dt] = q
}

// conv quantizes one convolution: its input (when no Relu or MaxPool
// quantized it already), its weights per output channel and its bias.
func (b *builder) conv(n *onnxpb.NodeProto) error {
	x := n.Input[0]
	if _, ok := b.dq[x]; !ok {
		r, ok := b.ranges[x]
		if !ok {
			return fmt.Errorf("quantize: no calibrated range for %q", x)
		}
		b.qdq(x, activationParams(r, false))
	}
	xdq := b.dq[x]
	sx := b.qp[xdq].scale

	wt, _ := models.Initializer(b.m, n.Input[1])
	w, dims, err := models.TensorFloat32(wt)
	if err != nil {
		return fmt.Errorf("quantize: Conv node %s: %w", nodeName(n), err)
	}
	if len(dims) < 2 || dims[0] <= 0 {
		return fmt.Errorf("%w: Conv node %s: weight of shape %v", ErrUnsupported, nodeName(n), dims)
	}
	c := int(dims[0])
	per := len(w) / c
	sw := make([]float32, c)
	wq := make([]byte, len(w))
	for o := range c {
		row := w[o*per : (o+1)*per]
		var a float32
		for _, v := range row {
			a = max(a, float32(math.Abs(float64(v))))
		}
		s := a / 127
		if !(s > 0) {
			s = 1
		}
		sw[o] = s
		for i, v := range row {
			q := math.Round(float64(v) / float64(s))
			wq[o*per+i] = byte(int8(max(-127, min(127, q))))
		}
	}
	wDQ := b.dequantizedPerChannel(n.Input[1], "int8", onnxpb.TensorProto_INT8, dims, wq, sw)
	inputs := []string{xdq, wDQ}

	if len(n.Input) > 2 && n.Input[2] != "" {
		bt, _ := models.Initializer(b.m, n.Input[2])
		bias, bdims, err := models.TensorFloat32(bt)
		if err != nil {
			return fmt.Errorf("quantize: Conv node %s: %w", nodeName(n), err)
		}
		if len(bias) != c {
			return fmt.Errorf("%w: Conv node %s: %d biases for %d output channels", ErrUnsupported, nodeName(n), len(bias), c)
		}
		sb := make([]float32, c)
		bq := make([]byte, 4*c)
		for o, v := range bias {
			sb[o] = sx * sw[o]
			q := math.Round(float64(v) / float64(sb[o]))
			binary.LittleEndian.PutUint32(bq[4*o:], uint32(int32(max(math.MinInt32, min(math.MaxInt32, q)))))
		}
		bDQ := b.dequantizedPerChannel(n.Input[2], "int32", onnxpb.TensorProto_INT32, bdims, bq, sb)
		inputs = append(inputs, bDQ)
	}
	n.Input = inputs
	b.nodes = append(b.nodes, n)
	return nil
}

// setOpset raises the default domain's opset to minOpset (the ops that
// analyse lets through mean the same from their first versions on) and
// the IR version to the one that opset needs.
func setOpset(m *onnxpb.ModelProto) {
	found := false
	for _, o := range m.OpsetImport {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			found = true
			if o.GetVersion() < minOpset {
				o.Version = proto.Int64(minOpset)
			}
		}
	}
	if !found {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(""), Version: proto.Int64(minOpset)})
	}
	m.IrVersion = proto.Int64(max(m.GetIrVersion(), 7))
}
