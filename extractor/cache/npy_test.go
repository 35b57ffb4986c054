package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func TestEncodeHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		dtype DType
		shape []int
	}{
		{"features", Float32, []int{10000, 512}},
		{"labels", Int32, []int{7}},
		{"maps", Float16, []int{3, 512, 14, 14}},
		{"scalar", Float32, []int{}},
		{"empty", Int32, []int{0}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			b := encodeNpyHeader(tc.dtype, tc.shape)
			if len(b)%64 != 0 {
				t.Errorf("header is %d bytes, not a multiple of 64", len(b))
			}
			if b[len(b)-1] != '\n' {
				t.Errorf("header does not end with a newline")
			}
			h, err := readNpyHeader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if h.DType != tc.dtype || h.FortranOrder || !slices.Equal(h.Shape, tc.shape) || h.DataOffset != int64(len(b)) {
				t.Errorf("got %+v", h)
			}
		})
	}
}

// npyFile builds a header the way other writers lay it out.
func npyFile(major byte, dict string) []byte {
	b := []byte(npyMagic)
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	}
	return append(b, dict...)
}

func TestReadHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		file  []byte
		want  []int
		dtype DType
		err   bool
	}{
		{"numpy 1.x layout", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n"), []int{2, 3}, Float32, false},
		{"keys in another order, double quotes", npyFile(1, `{"shape": (5,), "fortran_order": False, "descr": "<i4"}`+"\n"), []int{5}, Int32, false},
		{"version 2", npyFile(2, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2, 3, 4), }\n"), []int{1, 2, 3, 4}, Float16, false},
		{"python 2 longs", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n"), []int{2, 3}, Float32, false},
		{"scalar", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n"), []int{}, Float32, false},
		{"not a tuple", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }\n"), nil, "", true},
		{"missing shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False}\n"), nil, "", true},
		{"repeated key", npyFile(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n"), nil, "", true},
		{"unknown key", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n"), nil, "", true},
		{"negative dim", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n"), nil, "", true},
		{"huge shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}\n"), nil, "", true},
		{"trailing garbage", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n"), nil, "", true},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), nil, "", true},
		{"version 9", npyFile(9, "{}"), nil, "", true},
		{"truncated", npyFile(1, "{'descr': '<f4'")[:14], nil, "", true},
		{"empty", nil, nil, "", true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h, err := readNpyHeader(bytes.NewReader(tc.file))
			if tc.err {
				if err == nil {
					t.Fatalf("no error, got %+v", h)
				}
				if !errors.Is(err, ErrNotNpy) {
					t.Errorf("error %v does not wrap ErrNotNpy", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.DType != tc.dtype || !slices.Equal(h.Shape, tc.want) || h.DataOffset != int64(len(tc.file)) {
				t.Errorf("got %+v", h)
			}
		})
	}
}

// FuzzReadHeader checks that no input panics the header parser and that
// every accepted header re-encodes to one that parses the same.
func FuzzReadHeader(f *testing.F) {
	f.Add(encodeNpyHeader(Float32, []int{10, 512}))
	f.Add(encodeNpyHeader(Float16, []int{2, 512, 14, 14}))
	f.Add(encodeNpyHeader(Int32, []int{3}))
	f.Add(npyFile(2, `{"shape": (5,), "fortran_order": True, "descr": "<i4"}`))
	f.Add([]byte(npyMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readNpyHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if h.DataOffset > int64(len(b)) {
			t.Fatalf("data offset %d past the %d input bytes", h.DataOffset, len(b))
		}
		if h.DType.Size() == 0 || h.FortranOrder || len(h.DType) > 8 {
			return
		}
		h2, err := readNpyHeader(bytes.NewReader(encodeNpyHeader(h.DType, h.Shape)))
		if err != nil || !slices.Equal(h.Shape, h2.Shape) || h2.DType != h.DType {
			t.Fatalf("re-encoded header %+v does not parse back: %+v, %v", h, h2, err)
		}
	})
}
