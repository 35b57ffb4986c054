package models

import (
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models/onnxpb"
)

// Small constructors for graph pieces, shared by synth, prepare and the
// graph generators of the other files in this package.

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
			panic("models: ValueInfo dim must be int, int64, string or nil")
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

func attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}
