package fetch

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// FuzzParseContentRange feeds outside strings to the Content-Range
// parser, seeded with the headers net/http's file server answers ranges
// with: what it accepts is in range and formats back to the same values.
func FuzzParseContentRange(f *testing.F) {
	body := strings.NewReader("0123456789")
	for _, rng := range []string{"bytes=3-", "bytes=0-4", "bytes=20-"} {
		req := httptest.NewRequest(http.MethodGet, "/m.tar.gz", nil)
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "m.tar.gz", time.Time{}, body)
		f.Add(rec.Header().Get("Content-Range"))
	}
	f.Add("bytes 0-0/*")
	f.Fuzz(func(t *testing.T, v string) {
		start, size, ok := parseContentRange(v)
		if !ok {
			return
		}
		if start < -1 || size < -1 {
			t.Fatalf("%q: start %d, size %d", v, start, size)
		}
		sz := "*"
		if size >= 0 {
			sz = fmt.Sprint(size)
		}
		again := fmt.Sprintf("bytes */%s", sz)
		if start >= 0 {
			again = fmt.Sprintf("bytes %d-%d/%s", start, start, sz)
		}
		if s2, z2, ok := parseContentRange(again); !ok || s2 != start || z2 != size {
			t.Fatalf("%q parsed as %d, %d; %q as %d, %d, %v", v, start, size, again, s2, z2, ok)
		}
	})
}

// FuzzReadFloatTensor feeds outside bytes to the reader of an archive's
// test data files (TensorProto): an accepted tensor has as many values as
// its dims say and encodes back to the same tensor.
func FuzzReadFloatTensor(f *testing.F) {
	for _, tp := range []*onnxpb.TensorProto{
		models.NewTensorFloat32("x", []int64{1, 3}, []float32{1, -2, float32(math.Inf(1))}),
		models.NewTensorFloat32("", []int64{}, []float32{0.5}),
		{Name: proto.String("f"), Dims: []int64{2}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{1, 2}},
		{Name: proto.String("i"), Dims: []int64{2}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{1, 2}},
		// A few bytes of dims asking for gigabytes must not be allocated.
		{Dims: []int64{math.MaxInt32}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT))},
	} {
		b, err := proto.Marshal(tp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(t.TempDir(), "input_0.pb")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		name, data, dims, err := readFloatTensor(file)
		if err != nil {
			return
		}
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		if n != int64(len(data)) {
			t.Fatalf("dims %v, %d values", dims, len(data))
		}
		again, err := proto.Marshal(models.NewTensorFloat32(name, dims, data))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, again, 0o644); err != nil {
			t.Fatal(err)
		}
		name2, data2, dims2, err := readFloatTensor(file)
		if err != nil || name2 != name || !slices.Equal(dims2, dims) || !bytes.Equal(f32bytes(data2), f32bytes(data)) {
			t.Fatalf("re-encoded tensor does not read back: %v", err)
		}
	})
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = fmt.Appendf(b, "%08x", math.Float32bits(x))
	}
	return b
}

// FuzzReadUnpacked feeds outside bytes, as the marker of an unpacked
// folder, to readUnpacked: a model it reports lies inside the folder.
// The seed is the marker unpackModel writes.
func FuzzReadUnpacked(f *testing.F) {
	const sha = "00ff"
	tmp := f.TempDir()
	archive := filepath.Join(tmp, "m.tar.gz")
	if err := os.WriteFile(archive, fetchTarGz(f, []fetchEntry{{Name: "m/model.onnx", Body: []byte("model")}}), 0o644); err != nil {
		f.Fatal(err)
	}
	dest := filepath.Join(tmp, "unpacked")
	if _, err := unpackModel(context.Background(), archive, dest, sha); err != nil {
		f.Fatal(err)
	}
	marker, err := os.ReadFile(filepath.Join(dest, unpackedMarker))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(marker)
	f.Add(bytes.Replace(marker, []byte("m/model.onnx"), []byte("../unpacked/m/model.onnx"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dest, unpackedMarker), b, 0o644); err != nil {
			t.Fatal(err)
		}
		model, ok, err := readUnpacked(dest, sha)
		if err != nil || !ok {
			return
		}
		rel, err := filepath.Rel(dest, model)
		if err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("model %s outside %s", model, dest)
		}
	})
}
