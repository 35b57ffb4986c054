package ortlib_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// castModel is y = float(x) + b for a uint8 x and a float32 b of shape
// [N,2], and also returns x unchanged and max(x) as a scalar: one model
// with both input types, a non-float output and a rank-0 one.
func castModel(t *testing.T) []byte {
	t.Helper()
	vi := func(name string, elem onnxpb.TensorProto_DataType) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem))}}}}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("probe_test"),
			Node: []*onnxpb.NodeProto{
				{OpType: proto.String("Cast"), Input: []string{"x"}, Output: []string{"xf"}, Attribute: []*onnxpb.AttributeProto{
					{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxpb.TensorProto_FLOAT))}}},
				{OpType: proto.String("Add"), Input: []string{"xf", "b"}, Output: []string{"y"}},
				{OpType: proto.String("Identity"), Input: []string{"x"}, Output: []string{"x_out"}},
				{OpType: proto.String("ReduceMax"), Input: []string{"xf"}, Output: []string{"max"}, Attribute: []*onnxpb.AttributeProto{
					{Name: proto.String("keepdims"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)}}},
			},
			Input:  []*onnxpb.ValueInfoProto{vi("x", onnxpb.TensorProto_UINT8), vi("b", onnxpb.TensorProto_FLOAT)},
			Output: []*onnxpb.ValueInfoProto{vi("y", onnxpb.TensorProto_FLOAT), vi("x_out", onnxpb.TensorProto_UINT8), vi("max", onnxpb.TensorProto_FLOAT)},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProbe(t *testing.T) {
	t.Parallel()
	model := castModel(t)
	inputs := []ortlib.Tensor{
		{Name: "x", Shape: []int64{1, 2}, Data: []uint8{3, 250}},
		{Name: "b", Shape: []int64{1, 2}, Data: []float32{0.5, -1}},
	}
	if !ort.IsInitialized() {
		if _, err := ortlib.Probe(context.Background(), model, inputs, []string{"y"}, 1); !errors.Is(err, ortlib.ErrNoORT) {
			t.Fatalf("before Init: err = %v, want ErrNoORT", err)
		}
	}
	ortlibtest.Init(t)
	res, err := ortlib.Probe(context.Background(), model, inputs, []string{"y", "x_out"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if y := res[0]; !y.Float32 || !slices.Equal(y.Shape, []int64{1, 2}) || !slices.Equal(y.Data, []float32{3.5, 249}) {
		t.Errorf("y = %+v, want float32 [1 2] [3.5 249]", y)
	}
	if x := res[1]; x.Float32 || x.Data != nil || !slices.Equal(x.Shape, []int64{1, 2}) {
		t.Errorf("x_out = %+v, want a uint8 [1 2] output without float data", x)
	}
	// A scalar output: its value or an error, never a panic.
	// (onnxruntime_go 1.27 refuses rank-0 tensors: an error, with the
	// outputs it never made left as typed nils that the cleanup skips.)
	if res, err := ortlib.Probe(context.Background(), model, inputs, []string{"max"}, 1); err == nil &&
		(len(res[0].Shape) != 0 || !slices.Equal(res[0].Data, []float32{250})) {
		t.Errorf("max = %+v, want the scalar 250", res[0])
	}
	if _, err := ortlib.Probe(context.Background(), model, inputs[:1], []string{"y"}, 1); err == nil {
		t.Error("a missing input ran")
	}
}

// TestProbeCancelled: a cancelled context stops Probe with its error, so
// that an interrupt never waits for a check run.
func TestProbeCancelled(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inputs := []ortlib.Tensor{
		{Name: "x", Shape: []int64{1, 2}, Data: []uint8{3, 250}},
		{Name: "b", Shape: []int64{1, 2}, Data: []float32{0.5, -1}},
	}
	if _, err := ortlib.Probe(ctx, castModel(t), inputs, []string{"y"}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
