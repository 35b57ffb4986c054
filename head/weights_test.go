package head

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// testWeights is a small valid head: D=3, H=2, K=2.
func testWeights(hidden bool) *Weights {
	w := &Weights{Classes: []string{"cat", "dog"}, Tensors: map[string]Tensor{
		OutputWeight: {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
		OutputBias:   {Shape: []int{2}, Data: []float32{-1, 1}},
	}}
	if hidden {
		w.Tensors[HiddenWeight] = Tensor{Shape: []int{3, 2}, Data: []float32{0.5, -0.5, 1.5, 2.5, -3, 1e-8}}
		w.Tensors[HiddenBias] = Tensor{Shape: []int{2}, Data: []float32{0.25, 0}}
	} else {
		w.Tensors[OutputWeight] = Tensor{Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}}
	}
	return w
}

func TestWeightsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, hidden := range []bool{true, false} {
		w := testWeights(hidden)
		w.Tensors["block5_conv1.weight"] = Tensor{Shape: []int{1, 1, 3, 3}, Data: make([]float32, 9)}
		b, err := w.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseWeights(b)
		if err != nil {
			t.Fatal(err)
		}
		if !sameWeights(got, w) || strings.Join(got.Classes, ",") != "cat,dog" {
			t.Fatalf("round trip changed the weights: %+v", got)
		}
		if got.HasHidden() != hidden || got.InputDim() != 3 || got.NumClasses() != 2 {
			t.Errorf("hidden %v, D %d, K %d", got.HasHidden(), got.InputDim(), got.NumClasses())
		}
		if hidden && got.HiddenSize() != 2 {
			t.Errorf("hidden size %d, want 2", got.HiddenSize())
		}
	}
}

// TestWeightsLayout pins the file format: the safetensors header as the
// reference implementation writes it, so that Python's safetensors reads
// the files.
func TestWeightsLayout(t *testing.T) {
	t.Parallel()
	b, err := testWeights(false).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", 8+n)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"__metadata__": `{"classes":"[\"cat\",\"dog\"]","format":"tlearn-weights-1"}`,
		OutputBias:     `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`,
		OutputWeight:   `{"dtype":"F32","shape":[3,2],"data_offsets":[8,32]}`,
	}
	for k, v := range want {
		if string(h[k]) != v {
			t.Errorf("header[%s] = %s, want %s", k, h[k], v)
		}
	}
	if len(b) != int(8+n)+32 {
		t.Errorf("file has %d bytes, want %d", len(b), 8+n+32)
	}
}

func TestEvaluateRefusesMismatch(t *testing.T) {
	t.Parallel()
	w := testWeights(true) // D=3, K=2 (cat, dog)
	for _, tc := range []struct {
		desc string
		d    *Data
		want string
	}{
		{"feature size", &Data{X: make([]float32, 8), Y: []int32{0, 1}, Classes: []string{"cat", "dog"}}, "expects 3"},
		{"class count", &Data{X: make([]float32, 6), Y: []int32{0, 1}, Classes: []string{"cat", "dog", "bird"}}, "3 classes, the head 2"},
		{"class names", &Data{X: make([]float32, 6), Y: []int32{0, 1}, Classes: []string{"dog", "cat"}}, "not the head's"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := Evaluate(context.Background(), w, tc.d, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestParseWeightsOverlapAllocation: many header entries naming the same
// data bytes are refused before any of them is decoded, so a small file
// cannot make the reader allocate a multiple of its size.
func TestParseWeightsOverlapAllocation(t *testing.T) {
	// Not parallel: it measures the process's allocations.
	const floats, copies = 1 << 14, 256
	size := floats * 4
	var h strings.Builder
	h.WriteString(`{"__metadata__":{"format":"tlearn-weights-1","classes":"[\"a\",\"b\"]"}`)
	for i := range copies {
		fmt.Fprintf(&h, `,"t%d":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}`, i, floats, size)
	}
	h.WriteString("}")
	b := binary.LittleEndian.AppendUint64(nil, uint64(h.Len()))
	b = append(append(b, h.String()...), make([]byte, size)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ParseWeights(b)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "overlapping") {
		t.Fatalf("error %v, want one about overlapping tensors", err)
	}
	// Decoding every entry would take copies·size = 16 MiB.
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(4*len(b)+1<<20); got > limit {
		t.Errorf("parsing a %d-byte file allocated %d bytes, want at most %d", len(b), got, limit)
	}
}

// FuzzParseWeights feeds arbitrary bytes to the reader: it must return an
// error or weights that pass Validate, never panic or allocate without
// bound.
func FuzzParseWeights(f *testing.F) {
	for _, hidden := range []bool{true, false} {
		b, err := testWeights(hidden).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWeights(b)
		if err != nil {
			return
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("ParseWeights accepted invalid weights: %v", err)
		}
		again, err := w.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		w2, err := ParseWeights(again)
		if err != nil || !sameWeights(w, w2) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
	})
}
