package models

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// withUnknownFields is the tiny VGG with fields no ONNX version defines, at
// the top level and inside the graph, as a newer ONNX would write them.
func withUnknownFields(t testing.TB) []byte {
	t.Helper()
	m := TinyVGG(3)
	var unk []byte
	unk = protowire.AppendTag(unk, 900, protowire.BytesType)
	unk = protowire.AppendString(unk, "from the future")
	m.Graph.ProtoReflect().SetUnknown(unk)
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 901, protowire.VarintType)
	return protowire.AppendVarint(b, 42)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	mustMarshal := func(m *onnxpb.ModelProto) []byte {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		desc string
		data func(t *testing.T) []byte
	}{
		{"tiny torchvision", func(*testing.T) []byte { return mustMarshal(TinyVGG(1)) }},
		{"tiny keras with classifier", func(*testing.T) []byte {
			return mustMarshal(SynthVGG16(SynthSettings{Seed: 2, Keras: true, Width: 1.0 / 16, Classifier: true, Size: 32}))
		}},
		{"tiny zoo", func(*testing.T) []byte {
			return mustMarshal(SynthVGG16(SynthSettings{Seed: 2, Zoo: true, Width: 1.0 / 16, Size: 32}))
		}},
		{"unknown fields", func(t *testing.T) []byte { return withUnknownFields(t) }},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) { checkRoundTrip(t, tc.data(t)) })
	}
}

// checkRoundTrip reads the ONNX file orig and writes it again: the bytes
// must come back unchanged, and reading them back the same model.
func checkRoundTrip(t *testing.T, orig []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.onnx")
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.onnx")
	if err := Save(out, m); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, written) {
		t.Fatalf("read→write changed the bytes: %d in, %d out", len(orig), len(written))
	}
	m2, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, m2) {
		t.Fatal("read→write→read gives another model")
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	good, err := Marshal(TinyVGG(1))
	if err != nil {
		t.Fatal(err)
	}
	noOpset := TinyVGG(1)
	noOpset.OpsetImport = nil
	cutAfterGraph, err := Marshal(noOpset)
	if err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	cases := []struct {
		desc string
		data []byte
		want error
		text string
	}{
		{"empty", nil, ErrEmpty, "empty"},
		{"png", png, ErrNotONNX, "not an ONNX model"},
		{"text", []byte("hello, this is a text file\n"), ErrNotONNX, "not an ONNX model"},
		{"json", []byte(`{"format": 1}`), ErrNotONNX, "not an ONNX model"},
		{"truncated in the graph", good[:len(good)/2], ErrTruncated, "truncated"},
		{"truncated by one byte", good[:len(good)-1], ErrTruncated, "truncated"},
		{"truncated after the graph", cutAfterGraph, ErrTruncated, "truncated"},
		{"a tensor, not a model", mustTensorBytes(t), ErrNotONNX, "not an ONNX model"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "broken.onnx")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.text) || !strings.HasPrefix(err.Error(), "models: ") {
				t.Fatalf("error %q should start with models:, name %s and say %q", err, path, tc.text)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nothing.onnx")
		if _, err := Load(path); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v", err)
		}
	})
}

func mustTensorBytes(t *testing.T) []byte {
	b, err := proto.Marshal(NewTensorFloat32("w", []int64{2}, []float32{1, 2}))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// externalModel writes a model whose block5 weights live in weights.bin.
func externalModel(t *testing.T, dir string, writeData bool) (path string, want []float32) {
	t.Helper()
	m := TinyVGG(4)
	var data []byte
	for _, tt := range m.Graph.Initializer {
		if tt.GetName() != "24.weight" {
			continue
		}
		want, _, _ = TensorFloat32(tt)
		data = append(data, make([]byte, 16)...) // offset 16, as tools align data
		data = append(data, tt.RawData...)
		tt.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String("weights.bin")},
			{Key: proto.String("offset"), Value: proto.String("16")},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(tt.RawData)))},
		}
		tt.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		tt.RawData = nil
	}
	if writeData {
		if err := os.WriteFile(filepath.Join(dir, "weights.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "ext.onnx")
	if err := Save(path, m); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestExternalData(t *testing.T) {
	t.Parallel()
	t.Run("present", func(t *testing.T) {
		path, want := externalModel(t, t.TempDir(), true)
		m, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := Initializer(m, "24.weight")
		if !ok {
			t.Fatal("24.weight missing")
		}
		got, _, err := TensorFloat32(w)
		if err != nil {
			t.Fatal(err)
		}
		if err := tol.Floats(got, want, 0, 0); err != nil {
			t.Fatalf("24.weight: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		path, _ := externalModel(t, t.TempDir(), false)
		_, err := Load(path)
		if !errors.Is(err, ErrExternalData) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want ErrExternalData and not-exist", err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "weights.bin") {
			t.Fatalf("error %q should name %s and weights.bin", err, path)
		}
	})
	t.Run("shorter than declared", func(t *testing.T) {
		dir := t.TempDir()
		path, _ := externalModel(t, dir, true)
		if err := os.Truncate(filepath.Join(dir, "weights.bin"), 20); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if !errors.Is(err, ErrExternalData) || !strings.Contains(err.Error(), "do not fit") || !strings.Contains(err.Error(), "weights.bin") {
			t.Fatalf("err = %v, want one saying the data does not fit in weights.bin", err)
		}
	})
	t.Run("outside the folder", func(t *testing.T) {
		m := TinyVGG(4)
		m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		m.Graph.Initializer[0].ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("../../etc/passwd")}}
		path := filepath.Join(t.TempDir(), "evil.onnx")
		if err := Save(path, m); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, ErrExternalData) || !strings.Contains(err.Error(), "outside") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestTensors(t *testing.T) {
	t.Parallel()
	vals := []float32{1.5, -2, 0, float32(math.Inf(1))}
	raw := NewTensorFloat32("r", []int64{2, 2}, vals)
	fd := &onnxpb.TensorProto{Name: proto.String("f"), Dims: []int64{2, 2}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: vals}
	ints := NewTensorInt64("i", []int64{3}, []int64{-1, 0, 1 << 40})
	intData := &onnxpb.TensorProto{Name: proto.String("j"), Dims: []int64{3}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{-1, 0, 1 << 40}}
	for _, tc := range []struct {
		desc string
		t    *onnxpb.TensorProto
	}{{"raw_data", raw}, {"float_data", fd}} {
		t.Run(tc.desc, func(t *testing.T) {
			got, dims, err := TensorFloat32(tc.t)
			if err != nil {
				t.Fatal(err)
			}
			if len(dims) != 2 || dims[0] != 2 || dims[1] != 2 {
				t.Fatalf("dims %v", dims)
			}
			for i := range vals {
				if got[i] != vals[i] {
					t.Fatalf("got %v, want %v", got, vals)
				}
			}
		})
	}
	for _, tc := range []struct {
		desc string
		t    *onnxpb.TensorProto
	}{{"int64 raw_data", ints}, {"int64_data", intData}} {
		t.Run(tc.desc, func(t *testing.T) {
			got, _, err := tensorInt64(tc.t)
			if err != nil || got[0] != -1 || got[2] != 1<<40 {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
	t.Run("raw little-endian", func(t *testing.T) {
		if binary.LittleEndian.Uint32(raw.RawData) != math.Float32bits(1.5) {
			t.Fatal("raw_data is not little-endian float32")
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, _, err := TensorFloat32(ints); err == nil {
			t.Fatal("TensorFloat32 of an INT64 tensor succeeded")
		}
		bad := NewTensorFloat32("b", []int64{2}, []float32{1, 2})
		bad.Dims = []int64{3}
		if _, _, err := TensorFloat32(bad); err == nil {
			t.Fatal("TensorFloat32 with too little raw_data succeeded")
		}
	})
}

func TestInitializerAliases(t *testing.T) {
	t.Parallel()
	m := TinyVGG(5)
	cases := []struct {
		desc, name, wantName string
		found                bool
	}{
		{"direct", "0.weight", "0.weight", true},
		{"through Identity", "onnx::Conv_101", "17.bias", true},
		{"Constant node", "onnx::Conv_226", "", true},
		{"activation", "/1/Relu_output_0", "", false},
		{"unknown", "nope", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, ok := Initializer(m, tc.name)
			if ok != tc.found {
				t.Fatalf("found = %v, want %v", ok, tc.found)
			}
			if ok && got.GetName() != tc.wantName {
				t.Fatalf("resolved to %q, want %q", got.GetName(), tc.wantName)
			}
			if ok {
				if _, _, err := TensorFloat32(got); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Run("value_floats Constant", func(t *testing.T) {
		g := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{
			onnxgraph.Node("Constant", "c", nil, []string{"c"}, &onnxpb.AttributeProto{Name: proto.String("value_floats"), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: []float32{1, 2}}),
			onnxgraph.Node("Identity", "i", []string{"c"}, []string{"i"}),
		}}
		tt, ok := Initializer(&onnxpb.ModelProto{Graph: g}, "i")
		if !ok {
			t.Fatal("not found")
		}
		if v, _, _ := TensorFloat32(tt); len(v) != 2 || v[1] != 2 {
			t.Fatalf("got %v", v)
		}
	})
}

// FuzzUnmarshal checks that no input makes Unmarshal, Inspect or DetectVGG
// panic: ONNX files come from outside.
func FuzzUnmarshal(f *testing.F) {
	// Seeds at 1/64 width (a few kB) keep the fuzzer's mutations fast.
	good, err := Marshal(SynthVGG16(SynthSettings{Seed: 1, Width: 1.0 / 64}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte{0x08, 0x07, 0x3a, 0x02, 0x0a, 0x00})
	f.Add([]byte("not onnx"))
	keras, _ := Marshal(SynthVGG16(SynthSettings{Keras: true, Width: 1.0 / 64}))
	f.Add(keras)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		Inspect(m)
		if _, err := Marshal(m); err != nil {
			t.Fatalf("a parsed model does not encode: %v", err)
		}
	})
}

// TestLoadRefusesFIFO checks that a model path naming a named pipe is
// refused up front, where reading it would block until a writer comes.
func TestLoadRefusesFIFO(t *testing.T) {
	t.Parallel()
	fifo := fixtures.FIFO(t, filepath.Join(t.TempDir(), "model.onnx"))
	var err error
	fixtures.Within(t, 20*time.Second, func() { fixtures.UnblockFIFO(fifo) }, func() { _, err = Load(fifo) })
	if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("err = %v, want one naming %s as a FIFO", err, fifo)
	}
}
