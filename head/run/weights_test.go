package run

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWeightsFileRoundTrip(t *testing.T) {
	t.Parallel()
	for _, hidden := range []bool{true, false} {
		w := testWeights(hidden)
		p := filepath.Join(t.TempDir(), WeightsFile)
		if err := SaveWeights(p, w); err != nil {
			t.Fatal(err)
		}
		got, err := LoadWeights(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("round trip changed the weights: %+v", got)
		}
	}
}

func TestLoadWeightsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := SaveWeights(good, testWeights(true)); err != nil {
		t.Fatal(err)
	}
	valid, _ := os.ReadFile(good)
	header := func(h string) []byte {
		for len(h)%8 != 0 {
			h += " "
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(b, h...)
	}
	meta := `"__metadata__":{"format":"tlearn-weights-1","classes":"[\"a\",\"b\"]"}`
	for _, tc := range []struct {
		desc string
		data []byte // nil: no file
		want string
	}{
		{"missing file", nil, "no such file"},
		{"empty file", []byte{}, "too short"},
		{"truncated data", valid[:len(valid)-4], "truncated"},
		{"truncated header", valid[:20], "does not fit"},
		{"not json", header("{nope"), "malformed header"},
		{"not an object", header("[1,2]"), "not a JSON object"},
		{"other format", header(`{"__metadata__":{"format":"pt"}}`), "not a tlearn weights file"},
		{"no classes", header(`{"__metadata__":{"format":"tlearn-weights-1"}}`), "metadata classes"},
		{"f16 tensor", append(header(`{`+meta+`,"output.weight":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]}}`), 0, 0, 0, 0), "only F32"},
		{"offsets past the end", header(`{` + meta + `,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}`), "more bytes than the file has"},
		{"shape disagrees with offsets", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,4]}}`), make([]byte, 8)...), "do not hold"},
		{"overlapping tensors", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"output.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), make([]byte, 8)...), "overlapping"},
		{"trailing bytes", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"output.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`), make([]byte, 20)...), "trailing"},
		{"missing output bias", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}`), make([]byte, 8)...), "output.bias is missing"},
		{"class count mismatch", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"output.bias":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}}`), make([]byte, 24)...), "3 and 3 units but there are 2 classes"},
		{"hidden shape mismatch", append(header(`{`+meta+`,"hidden.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"hidden.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]},"output.weight":{"dtype":"F32","shape":[4,2],"data_offsets":[36,68]},"output.bias":{"dtype":"F32","shape":[2],"data_offsets":[68,76]}}`), make([]byte, 76)...), "do not fit output layer"},
		{"unknown entry field", append(header(`{`+meta+`,"output.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8],"x":1},"output.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`), make([]byte, 16)...), "malformed entry"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.desc, " ", "_")+".safetensors")
			if tc.data != nil {
				if err := os.WriteFile(p, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadWeights(p)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q, want one naming the file and containing %q", err, tc.want)
			}
			if tc.data == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error %v does not wrap os.ErrNotExist", err)
			}
		})
	}
}

func TestSaveWeightsRefusesInvalid(t *testing.T) {
	t.Parallel()
	w := testWeights(true)
	w.Classes = append(w.Classes, "bird")
	p := filepath.Join(t.TempDir(), WeightsFile)
	if err := SaveWeights(p, w); err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left behind: %v", err)
	}
}
