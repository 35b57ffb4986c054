package onnxgraph

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models/onnxpb"
)

// Node makes a node of the default ONNX domain.
func Node(op, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: outputs, Attribute: attrs}
	if name != "" {
		n.Name = proto.String(name)
	}
	return n
}

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrTensor makes a TENSOR attribute (the value of a Constant node).
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// Attr finds a node's attribute by name; nil when absent (the getters of
// a nil attribute return zero values).
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// ValueInfo makes a tensor value info. Each dim is an int (fixed size), a
// string (symbolic name) or nil (unknown); a nil dims slice leaves the shape
// out entirely (rank unknown).
func ValueInfo(name string, elem onnxpb.TensorProto_DataType, dims []any) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem))}
	if dims != nil {
		tt.Shape = shapeProto(dims)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}},
	}
}

func shapeProto(dims []any) *onnxpb.TensorShapeProto {
	s := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch v := d.(type) {
		case int:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}
		case int64:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}
		case nil:
		default:
			panic("onnxgraph: ValueInfo dim must be int, int64, string or nil")
		}
		s.Dim = append(s.Dim, dim)
	}
	return s
}

// Dim describes one dimension of a declared shape.
type Dim struct {
	Value int64  // > 0 when fixed
	Param string // symbolic name, when not fixed
}

// String is the value, the symbolic name or "?".
func (d Dim) String() string {
	switch {
	case d.Value > 0:
		return strconv.FormatInt(d.Value, 10)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// Shape returns the declared element type and shape of a value info; a nil
// shape means the rank is unknown.
func Shape(vi *onnxpb.ValueInfoProto) (elem onnxpb.TensorProto_DataType, dims []Dim, known bool) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return 0, nil, false
	}
	elem = onnxpb.TensorProto_DataType(tt.GetElemType())
	if tt.Shape == nil {
		return elem, nil, false
	}
	dims = make([]Dim, len(tt.Shape.Dim))
	for i, d := range tt.Shape.Dim {
		dims[i] = Dim{Value: d.GetDimValue(), Param: d.GetDimParam()}
	}
	return elem, dims, true
}

// DataTypeName names a TensorProto data type ("FLOAT"), or gives its
// number when ONNX defines no such type.
func DataTypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return strconv.Itoa(int(dt))
}

// NumElements is the product of dims; false when a dim is negative or the
// product overflows.
func NumElements(dims []int64) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// Names lists every value name of g.
func Names(g *onnxpb.GraphProto) map[string]bool {
	names := make(map[string]bool)
	for _, vi := range g.Input {
		names[vi.GetName()] = true
	}
	for _, t := range g.Initializer {
		names[t.GetName()] = true
	}
	for _, n := range g.Node {
		for _, o := range n.Output {
			names[o] = true
		}
		for _, in := range n.Input {
			names[in] = true
		}
	}
	return names
}

// Unique returns base, or base with a numeric suffix, unused in names, and
// marks it used.
func Unique(names map[string]bool, base string) string {
	name := base
	for i := 1; names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	names[name] = true
	return name
}

// Reserve renames tensors of g that carry one of the fixed names, so that
// new outputs (or inputs) can have them, and returns the mapping from old
// to new names (the identity for names it did not touch).
func Reserve(g *onnxpb.GraphProto, names map[string]bool, fixed ...string) func(string) string {
	renamed := make(map[string]string)
	for _, f := range fixed {
		if !names[f] {
			names[f] = true
			continue
		}
		to := Unique(names, f+"_src")
		renamed[f] = to
		rename := func(s []string) {
			for i, x := range s {
				if x == f {
					s[i] = to
				}
			}
		}
		for _, n := range g.Node {
			rename(n.Input)
			rename(n.Output)
		}
		for _, t := range g.Initializer {
			if t.GetName() == f {
				t.Name = proto.String(to)
			}
		}
		for _, vi := range slices.Concat(g.Input, g.Output, g.ValueInfo) {
			if vi.GetName() == f {
				vi.Name = proto.String(to)
			}
		}
	}
	return func(s string) string { return cmp.Or(renamed[s], s) }
}

// Prune keeps the nodes and initializers that the graph's outputs depend on.
// Nodes are in topological order (ONNX requires it), so one backward pass
// suffices; names used inside subgraphs count as used.
func Prune(g *onnxpb.GraphProto) {
	need := make(map[string]bool)
	for _, o := range g.Output {
		need[o.GetName()] = true
	}
	keep := make([]bool, len(g.Node))
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		for _, o := range n.Output {
			if need[o] {
				keep[i] = true
			}
		}
		if !keep[i] {
			continue
		}
		for _, in := range n.Input {
			need[in] = true
		}
		for _, a := range n.Attribute {
			for _, sg := range append([]*onnxpb.GraphProto{a.G}, a.Graphs...) {
				subgraphNames(sg, need)
			}
		}
	}
	var nodes []*onnxpb.NodeProto
	for i, n := range g.Node {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	var inits []*onnxpb.TensorProto
	for _, t := range g.Initializer {
		if need[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	var sparse []*onnxpb.SparseTensorProto
	for _, t := range g.SparseInitializer {
		if need[t.GetValues().GetName()] {
			sparse = append(sparse, t)
		}
	}
	g.SparseInitializer = sparse
}

func subgraphNames(g *onnxpb.GraphProto, need map[string]bool) {
	if g == nil {
		return
	}
	for _, n := range g.Node {
		for _, in := range n.Input {
			need[in] = true
		}
		for _, a := range n.Attribute {
			for _, sg := range append([]*onnxpb.GraphProto{a.G}, a.Graphs...) {
				subgraphNames(sg, need)
			}
		}
	}
}
