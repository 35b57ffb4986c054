package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Sentinel errors of Load; the returned errors wrap them and name the file.
var (
	ErrEmpty     = errors.New("models: empty file")
	ErrNotONNX   = errors.New("models: not an ONNX model")
	ErrTruncated = errors.New("models: truncated ONNX file")
	// ErrExternalData means a tensor stored outside the model file could not be read.
	ErrExternalData = errors.New("models: external tensor data")
)

// Load reads an ONNX model. Tensors whose data lives in external files
// (models over 2 GB, or saved with save_as_external_data) are read from
// files located relative to the model's folder and stored inline, so that
// every later step sees one self-contained model.
func Load(path string) (*onnxpb.ModelProto, error) {
	b, err := fsutil.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: load %s: %w", path, err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("models: load %s: %w", path, err)
	}
	if err := inlineExternalData(m, filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("models: load %s: %w", path, err)
	}
	return m, nil
}

// Unmarshal parses the bytes of an ONNX file. Errors wrap ErrEmpty,
// ErrNotONNX or ErrTruncated where one of them applies; they do not name a
// file (Load adds the name).
func Unmarshal(b []byte) (*onnxpb.ModelProto, error) {
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	if err := scanModel(b); err != nil {
		return nil, err
	}
	m := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	switch {
	case m.Graph == nil:
		return nil, fmt.Errorf("%w: no graph", ErrNotONNX)
	case len(m.OpsetImport) == 0 && m.GetIrVersion() >= 3:
		// Every exporter writes opset_import after the graph, so a file cut
		// exactly between two top-level fields loses it.
		return nil, fmt.Errorf("%w: no opset_import after the graph", ErrTruncated)
	}
	return m, nil
}

// scanModel walks ModelProto's top-level fields without decoding them: a
// first field that is not a ModelProto field means another kind of file; a
// length running past the end means the file was cut short. proto.Unmarshal
// alone reports both as "invalid wire-format data".
func scanModel(b []byte) error {
	fields := (&onnxpb.ModelProto{}).ProtoReflect().Descriptor().Fields()
	for first := true; len(b) > 0; first = false {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			if first {
				return fmt.Errorf("%w: does not start with a protobuf field", ErrNotONNX)
			}
			return fmt.Errorf("%w: %v", ErrTruncated, protowire.ParseError(n))
		}
		fd := fields.ByNumber(num)
		if first && (fd == nil || !wireTypeFits(fd, typ)) {
			return fmt.Errorf("%w: first field %d (wire type %d) is not a ModelProto field", ErrNotONNX, num, typ)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			if errors.Is(protowire.ParseError(m), io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: field %d runs past the end of the file (%d bytes left)", ErrTruncated, num, len(b))
			}
			return fmt.Errorf("%w: %v", ErrNotONNX, protowire.ParseError(m))
		}
		b = b[n+m:]
	}
	return nil
}

func wireTypeFits(fd protoreflect.FieldDescriptor, typ protowire.Type) bool {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return typ == protowire.BytesType
	case protoreflect.Int64Kind, protoreflect.Int32Kind, protoreflect.EnumKind:
		return typ == protowire.VarintType || (fd.IsList() && typ == protowire.BytesType)
	}
	return true
}

// Marshal encodes a model deterministically. A model read by Unmarshal and
// encoded again gives the same bytes as long as the writer ordered fields by
// number, as ONNX's C++ and Python writers do; unknown fields (from newer
// ONNX versions) are kept.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("models: encode model: %w", err)
	}
	return b, nil
}

// Save writes a model to path atomically.
func Save(path string, m *onnxpb.ModelProto) error {
	b, err := Marshal(m)
	if err != nil {
		return fmt.Errorf("models: save %s: %w", path, err)
	}
	if err := fsutil.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("models: save %s: %w", path, err)
	}
	return nil
}

// inlineExternalData reads every externally stored initializer into raw_data.
func inlineExternalData(m *onnxpb.ModelProto, dir string) error {
	var err error
	visitTensors(m.GetGraph(), func(t *onnxpb.TensorProto) {
		if err == nil && t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			err = readExternal(t, dir)
		}
	})
	return err
}

func readExternal(t *onnxpb.TensorProto, dir string) error {
	var location string
	offset, length := int64(0), int64(-1)
	for _, kv := range t.ExternalData {
		var err error
		switch kv.GetKey() {
		case "location":
			location = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return fmt.Errorf("%w: tensor %q: %s: %v", ErrExternalData, t.GetName(), kv.GetKey(), err)
		}
	}
	if location == "" {
		return fmt.Errorf("%w: tensor %q has no location", ErrExternalData, t.GetName())
	}
	// ONNX's checker refuses locations outside the model's folder; so do we,
	// so that a model file cannot make tlearn read arbitrary files.
	clean := filepath.Clean(filepath.FromSlash(location))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: tensor %q: location %q is outside the model's folder", ErrExternalData, t.GetName(), location)
	}
	path := filepath.Join(dir, clean)
	f, err := fsutil.Open(path)
	if err != nil {
		return fmt.Errorf("%w: tensor %q: %w", ErrExternalData, t.GetName(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: tensor %q: %w", ErrExternalData, t.GetName(), err)
	}
	if length < 0 {
		length = st.Size() - offset
	}
	// Checked before allocating: a declared length must not make a small
	// file cost gigabytes of memory.
	if offset < 0 || length > st.Size()-offset {
		return fmt.Errorf("%w: tensor %q: %d bytes at offset %d do not fit in %s (%d bytes)", ErrExternalData, t.GetName(), length, offset, path, st.Size())
	}
	if want, ok := byteSize(t); ok && want != length {
		return fmt.Errorf("%w: tensor %q: %s holds %d bytes for it, its shape needs %d", ErrExternalData, t.GetName(), path, length, want)
	}
	if length < 0 || length > math.MaxInt32 {
		return fmt.Errorf("%w: tensor %q: bad length %d in %s", ErrExternalData, t.GetName(), length, path)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return fmt.Errorf("%w: tensor %q: read %d bytes at %d of %s: %w", ErrExternalData, t.GetName(), length, offset, path, err)
	}
	t.RawData = buf
	t.ExternalData = nil
	t.DataLocation = nil
	return nil
}

// visitTensors calls fn for every initializer and Constant tensor of g and
// of its subgraphs.
func visitTensors(g *onnxpb.GraphProto, fn func(*onnxpb.TensorProto)) {
	if g == nil {
		return
	}
	for _, t := range g.Initializer {
		fn(t)
	}
	for _, st := range g.SparseInitializer {
		if st.Values != nil {
			fn(st.Values)
		}
		if st.Indices != nil {
			fn(st.Indices)
		}
	}
	for _, n := range g.Node {
		for _, a := range n.Attribute {
			if a.T != nil {
				fn(a.T)
			}
			for _, t := range a.Tensors {
				fn(t)
			}
			visitTensors(a.G, fn)
			for _, sg := range a.Graphs {
				visitTensors(sg, fn)
			}
		}
	}
}

// elemSize is the size in bytes of fixed-size element types.
func elemSize(dt int32) int64 {
	switch onnxpb.TensorProto_DataType(dt) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		return 4
	case onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64, onnxpb.TensorProto_COMPLEX64:
		return 8
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16, onnxpb.TensorProto_INT16, onnxpb.TensorProto_UINT16:
		return 2
	case onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8, onnxpb.TensorProto_BOOL:
		return 1
	case onnxpb.TensorProto_COMPLEX128:
		return 16
	}
	return 0
}

func byteSize(t *onnxpb.TensorProto) (int64, bool) {
	es := elemSize(t.GetDataType())
	if es == 0 {
		return 0, false
	}
	n, ok := onnxgraph.NumElements(t.Dims)
	return n * es, ok
}

// TensorFloat32 returns a float32 tensor's values (from raw_data or
// float_data) and its dims. The data is a fresh slice.
func TensorFloat32(t *onnxpb.TensorProto) (data []float32, dims []int64, err error) {
	if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return nil, nil, fmt.Errorf("models: tensor %q: data type %s, want FLOAT", t.GetName(), onnxgraph.DataTypeName(t.GetDataType()))
	}
	n, err := tensorLen(t)
	if err != nil {
		return nil, nil, err
	}
	// The lengths are checked before allocating: dims come from the file,
	// and a few bytes of dims can ask for gigabytes.
	switch {
	case t.RawData != nil:
		if int64(len(t.RawData)) != 4*n {
			return nil, nil, fmt.Errorf("models: tensor %q: %d raw bytes for %d float32 values", t.GetName(), len(t.RawData), n)
		}
		data = make([]float32, n)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
	case int64(len(t.FloatData)) == n:
		data = make([]float32, n)
		copy(data, t.FloatData)
	default:
		return nil, nil, fmt.Errorf("models: tensor %q: %d float_data values for %d elements", t.GetName(), len(t.FloatData), n)
	}
	return data, append([]int64(nil), t.Dims...), nil
}

// tensorInt64 is TensorFloat32 for INT64 tensors (shapes, axes, indices).
func tensorInt64(t *onnxpb.TensorProto) (data []int64, dims []int64, err error) {
	if t.GetDataType() != int32(onnxpb.TensorProto_INT64) {
		return nil, nil, fmt.Errorf("models: tensor %q: data type %s, want INT64", t.GetName(), onnxgraph.DataTypeName(t.GetDataType()))
	}
	n, err := tensorLen(t)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case t.RawData != nil:
		if int64(len(t.RawData)) != 8*n {
			return nil, nil, fmt.Errorf("models: tensor %q: %d raw bytes for %d int64 values", t.GetName(), len(t.RawData), n)
		}
		data = make([]int64, n)
		for i := range data {
			data[i] = int64(binary.LittleEndian.Uint64(t.RawData[8*i:]))
		}
	case int64(len(t.Int64Data)) == n:
		data = make([]int64, n)
		copy(data, t.Int64Data)
	default:
		return nil, nil, fmt.Errorf("models: tensor %q: %d int64_data values for %d elements", t.GetName(), len(t.Int64Data), n)
	}
	return data, append([]int64(nil), t.Dims...), nil
}

func tensorLen(t *onnxpb.TensorProto) (int64, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return 0, fmt.Errorf("models: tensor %q: %w not loaded (use models.Load)", t.GetName(), ErrExternalData)
	}
	n, ok := onnxgraph.NumElements(t.Dims)
	if !ok || n > math.MaxInt32 {
		return 0, fmt.Errorf("models: tensor %q: bad dims %v", t.GetName(), t.Dims)
	}
	return n, nil
}

// NewTensorFloat32 makes a float32 initializer with little-endian raw_data.
// It panics when len(data) does not match dims (a programmer error).
func NewTensorFloat32(name string, dims []int64, data []float32) *onnxpb.TensorProto {
	if n, ok := onnxgraph.NumElements(dims); !ok || n != int64(len(data)) {
		panic(fmt.Sprintf("models: NewTensorFloat32 %q: %d values for dims %v", name, len(data), dims))
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     append([]int64{}, dims...),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		RawData:  raw,
	}
}

// NewTensorInt64 makes an int64 initializer with little-endian raw_data.
func NewTensorInt64(name string, dims []int64, data []int64) *onnxpb.TensorProto {
	if n, ok := onnxgraph.NumElements(dims); !ok || n != int64(len(data)) {
		panic(fmt.Sprintf("models: NewTensorInt64 %q: %d values for dims %v", name, len(data), dims))
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		Dims:     append([]int64{}, dims...),
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		RawData:  raw,
	}
}

// Initializer finds the constant tensor that the graph's value name holds:
// an initializer, or a value aliased to one through Identity nodes (torch.onnx
// shares equal tensors that way), or the output of a Constant node. A tensor
// found through an alias or a Constant is returned under its own name, not
// under name; callers that need the name rewire or copy.
func Initializer(m *onnxpb.ModelProto, name string) (*onnxpb.TensorProto, bool) {
	return graphConstant(m.GetGraph(), name)
}

func graphConstant(g *onnxpb.GraphProto, name string) (*onnxpb.TensorProto, bool) {
	if g == nil {
		return nil, false
	}
	inits := make(map[string]*onnxpb.TensorProto, len(g.Initializer))
	for _, t := range g.Initializer {
		inits[t.GetName()] = t
	}
	producer := make(map[string]*onnxpb.NodeProto, len(g.Node))
	for _, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	for range len(g.Node) + 1 { // bounded: a malformed graph may loop
		if t, ok := inits[name]; ok {
			return t, true
		}
		n := producer[name]
		switch {
		case n == nil:
			return nil, false
		case n.GetOpType() == "Identity" && n.GetDomain() == "" && len(n.Input) == 1:
			name = n.Input[0]
		case n.GetOpType() == "Constant" && n.GetDomain() == "":
			return constantValue(n)
		default:
			return nil, false
		}
	}
	return nil, false
}

// constantValue converts a Constant node's attribute to a tensor.
func constantValue(n *onnxpb.NodeProto) (*onnxpb.TensorProto, bool) {
	if len(n.Output) != 1 {
		return nil, false
	}
	name := n.Output[0]
	for _, a := range n.Attribute {
		switch a.GetName() {
		case "value":
			if a.T != nil {
				return a.T, true
			}
		case "value_float":
			return NewTensorFloat32(name, nil, []float32{a.GetF()}), true
		case "value_floats":
			return NewTensorFloat32(name, []int64{int64(len(a.Floats))}, a.Floats), true
		case "value_int":
			return NewTensorInt64(name, nil, []int64{a.GetI()}), true
		case "value_ints":
			return NewTensorInt64(name, []int64{int64(len(a.Ints))}, a.Ints), true
		}
	}
	return nil, false
}
