package head

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// WeightsFormat is the "format" entry of the safetensors metadata.
const WeightsFormat = "tlearn-weights-1"

// Tensor names in the weights file, in Keras layout (a Dense kernel is
// [inputs, units]).
const (
	HiddenWeight = "hidden.weight" // [D, H]; absent without a hidden layer
	HiddenBias   = "hidden.bias"   // [H]
	OutputWeight = "output.weight" // [H, K], or [D, K] without a hidden layer
	OutputBias   = "output.bias"   // [K]
)

// Tensor is a float32 array in row-major (C) order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero tensor of the given shape.
func NewTensor(shape ...int) Tensor {
	return Tensor{Shape: slices.Clone(shape), Data: make([]float32, shapeSize(shape))}
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Weights are the trained parameters of a classifier and its class names.
// The head tensors are named by the constants above; a fine-tuned run adds
// block5_conv{1,2,3}.{weight,bias} in torchvision layout.
type Weights struct {
	Classes []string
	Tensors map[string]Tensor
}

// Clone returns a deep copy.
func (w *Weights) Clone() *Weights {
	c := &Weights{Classes: slices.Clone(w.Classes), Tensors: make(map[string]Tensor, len(w.Tensors))}
	for k, t := range w.Tensors {
		c.Tensors[k] = Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
	}
	return c
}

// HasHidden reports whether the head has a hidden layer.
func (w *Weights) HasHidden() bool {
	_, ok := w.Tensors[HiddenWeight]
	return ok
}

// Hidden returns the hidden layer's kernel [D,H] and bias [H]; ok is false
// for a head without a hidden layer.
func (w *Weights) Hidden() (kernel, bias Tensor, ok bool) {
	kernel, ok = w.Tensors[HiddenWeight]
	if !ok {
		return Tensor{}, Tensor{}, false
	}
	return kernel, w.Tensors[HiddenBias], true
}

// Output returns the output layer's kernel [H or D, K] and bias [K].
func (w *Weights) Output() (kernel, bias Tensor) {
	return w.Tensors[OutputWeight], w.Tensors[OutputBias]
}

// InputDim is D, the feature size the head expects.
func (w *Weights) InputDim() int {
	if k, _, ok := w.Hidden(); ok {
		return k.Shape[0]
	}
	k, _ := w.Output()
	return k.Shape[0]
}

// HiddenSize is H, or 0 without a hidden layer.
func (w *Weights) HiddenSize() int {
	if k, _, ok := w.Hidden(); ok {
		return k.Shape[1]
	}
	return 0
}

// NumClasses is K.
func (w *Weights) NumClasses() int { return len(w.Classes) }

// Validate checks that the head tensors exist and fit each other and the
// class list. Other tensors (fine-tuned convolutions) only need a shape that
// matches their data.
func (w *Weights) Validate() error {
	if len(w.Classes) == 0 {
		return errors.New("no class names")
	}
	for name, t := range w.Tensors {
		if len(t.Shape) == 0 || shapeSize(t.Shape) != len(t.Data) {
			return fmt.Errorf("tensor %s: shape %v does not match its %d values", name, t.Shape, len(t.Data))
		}
		for _, d := range t.Shape {
			if d <= 0 {
				return fmt.Errorf("tensor %s: shape %v has an empty dimension", name, t.Shape)
			}
		}
	}
	need := func(name string, rank int) (Tensor, error) {
		t, ok := w.Tensors[name]
		if !ok {
			return t, fmt.Errorf("tensor %s is missing", name)
		}
		if len(t.Shape) != rank {
			return t, fmt.Errorf("tensor %s has shape %v, want rank %d", name, t.Shape, rank)
		}
		return t, nil
	}
	ow, err := need(OutputWeight, 2)
	if err != nil {
		return err
	}
	ob, err := need(OutputBias, 1)
	if err != nil {
		return err
	}
	k := len(w.Classes)
	if ow.Shape[1] != k || ob.Shape[0] != k {
		return fmt.Errorf("the output layer has %d and %d units but there are %d classes", ow.Shape[1], ob.Shape[0], k)
	}
	_, hasW := w.Tensors[HiddenWeight]
	_, hasB := w.Tensors[HiddenBias]
	if hasW != hasB {
		return fmt.Errorf("only one of %s and %s is present", HiddenWeight, HiddenBias)
	}
	if hasW {
		hw, err := need(HiddenWeight, 2)
		if err != nil {
			return err
		}
		hb, err := need(HiddenBias, 1)
		if err != nil {
			return err
		}
		if hb.Shape[0] != hw.Shape[1] || ow.Shape[0] != hw.Shape[1] {
			return fmt.Errorf("hidden layer shapes %v and %v do not fit output layer %v", hw.Shape, hb.Shape, ow.Shape)
		}
	}
	return nil
}

// MarshalBinary encodes w in the safetensors format (see Encode).
func (w *Weights) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	if err := w.Encode(&b, nil); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// safetensors header entry of one tensor.
type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// maxHeaderBytes bounds the JSON header a reader accepts, before any
// allocation sized by it (the safetensors library uses the same limit).
const maxHeaderBytes = 100 << 20

// Encode validates w and writes it to out in the safetensors format: a
// canonical JSON header with the tensors (sorted by name, F32, row-major)
// and the metadata entries "format" (WeightsFormat) and "classes" (a JSON
// list), then the data, 8-byte aligned as the reference writer does. extra
// adds metadata entries for formats built on this one (the fine-tune
// checkpoint keeps its training state there); it cannot replace "format"
// or "classes".
func (w *Weights) Encode(out io.Writer, extra map[string]string) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("head: %w", err)
	}
	names := make([]string, 0, len(w.Tensors))
	for n := range w.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	classes, err := json.Marshal(w.Classes)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for k, v := range extra {
		meta[k] = v
	}
	meta["format"], meta["classes"] = WeightsFormat, string(classes)
	// json.Marshal sorts map keys, which gives a canonical header.
	header := map[string]any{"__metadata__": meta}
	var off int64
	for _, n := range names {
		t := w.Tensors[n]
		size := int64(len(t.Data)) * 4
		header[n] = stEntry{DType: "F32", Shape: t.Shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	// Pad with spaces so that the data starts 8-byte aligned, as the
	// reference writer does.
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	var pre [8]byte
	binary.LittleEndian.PutUint64(pre[:], uint64(len(hb)))
	bw := newByteWriter(out)
	bw.write(pre[:])
	bw.write(hb)
	for _, n := range names {
		bw.floats(w.Tensors[n].Data)
	}
	return bw.err
}

// byteWriter writes little-endian float32s through one reused buffer.
type byteWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newByteWriter(w io.Writer) *byteWriter { return &byteWriter{w: w, buf: make([]byte, 0, 1<<16)} }

func (b *byteWriter) write(p []byte) {
	if b.err == nil {
		_, b.err = b.w.Write(p)
	}
}

func (b *byteWriter) floats(x []float32) {
	for len(x) > 0 && b.err == nil {
		n := min(len(x), cap(b.buf)/4)
		buf := b.buf[:0]
		for _, v := range x[:n] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		b.write(buf)
		x = x[n:]
	}
}

// ParseWeights decodes a safetensors file held in memory (as Encode
// writes it, or any safetensors file with the same tensors and metadata)
// and validates it. Errors do not carry the package prefix: callers name
// the file.
func ParseWeights(b []byte) (*Weights, error) {
	raw, data, err := splitSafetensors(b)
	if err != nil {
		return nil, err
	}
	w := &Weights{Tensors: make(map[string]Tensor, len(raw))}
	var meta map[string]string
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("malformed __metadata__: %w", err)
		}
		delete(raw, "__metadata__")
	}
	if meta["format"] != WeightsFormat {
		return nil, fmt.Errorf("metadata format %q, want %q (not a tlearn weights file)", meta["format"], WeightsFormat)
	}
	if err := json.Unmarshal([]byte(meta["classes"]), &w.Classes); err != nil {
		return nil, fmt.Errorf("metadata classes: %w", err)
	}
	spans, err := tensorSpans(raw, int64(len(data)))
	if err != nil {
		return nil, err
	}
	for _, s := range spans {
		t := Tensor{Shape: s.shape, Data: make([]float32, (s.end-s.start)/4)}
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[s.start+int64(i)*4:]))
		}
		w.Tensors[s.name] = t
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// splitSafetensors checks the length prefix and returns the header's
// entries, unparsed, and the data bytes.
func splitSafetensors(b []byte) (map[string]json.RawMessage, []byte, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("%d bytes is too short for a safetensors file (truncated?)", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n < 2 || n > maxHeaderBytes || n > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d does not fit the file of %d bytes (not a safetensors file, or truncated)", n, len(b))
	}
	hb := b[8 : 8+n]
	if hb[0] != '{' {
		return nil, nil, errors.New("header is not a JSON object (not a safetensors file)")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimRight(hb, " "), &raw); err != nil {
		return nil, nil, fmt.Errorf("malformed header: %w", err)
	}
	return raw, b[8+n:], nil
}

// span is where one tensor's bytes lie in the data.
type span struct {
	name       string
	shape      []int
	start, end int64
}

// tensorSpans parses the header's tensor entries and checks them against
// the size of the data: F32 only, offsets that hold the shape, and
// tensors that tile the data exactly. The spans come sorted by offset.
func tensorSpans(raw map[string]json.RawMessage, dataLen int64) ([]span, error) {
	spans := make([]span, 0, len(raw))
	for name, r := range raw {
		var e stEntry
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %s: malformed entry: %w", name, err)
		}
		if e.DType != "F32" {
			return nil, fmt.Errorf("tensor %s: dtype %q, only F32 is supported", name, e.DType)
		}
		size := int64(4)
		for _, d := range e.Shape {
			if d <= 0 || d > math.MaxInt32 {
				return nil, fmt.Errorf("tensor %s: bad shape %v", name, e.Shape)
			}
			size *= int64(d)
			if size > dataLen {
				return nil, fmt.Errorf("tensor %s: shape %v needs more bytes than the file has", name, e.Shape)
			}
		}
		s, end := e.DataOffsets[0], e.DataOffsets[1]
		if s < 0 || end < s || end > dataLen || end-s != size {
			return nil, fmt.Errorf("tensor %s: data offsets [%d,%d) do not hold shape %v in %d data bytes", name, s, end, e.Shape, dataLen)
		}
		spans = append(spans, span{name, e.Shape, s, end})
	}
	// The format requires the tensors to tile the data exactly: no overlap,
	// no gap, nothing after the last one. Checked before decoding, so that
	// many entries naming the same bytes cannot multiply the allocation.
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	var at int64
	for _, s := range spans {
		if s.start != at {
			return nil, fmt.Errorf("tensor %s starts at byte %d of the data, want %d (overlapping or gapped tensors)", s.name, s.start, at)
		}
		at = s.end
	}
	if at != dataLen {
		return nil, fmt.Errorf("%d data bytes but the tensors cover %d (truncated or trailing garbage)", dataLen, at)
	}
	return spans, nil
}
