package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testManifest describes a cache of n rows over two classes.
func testManifest(n, dim, chunk int, maps []int) *Manifest {
	m := &Manifest{
		Fingerprint: Fingerprint(FingerprintInput{ExtractorSHA256: "abc", Preset: "vgg16-torchvision", Size: 32,
			Interpolation: "bilinear", Preprocessing: json.RawMessage(`{"scale":1}`)}),
		Model:         ModelRef{Dir: "/models/vgg", ExtractorSHA256: "abc", Preset: "vgg16-torchvision"},
		Size:          32,
		Interpolation: "bilinear",
		Preprocessing: json.RawMessage(`{"scale":1}`),
		DataDir:       "/data",
		Classes:       []string{"cat", "dog"},
		N:             n,
		ChunkSize:     chunk,
		FeatureDim:    dim,
		MapsShape:     maps,
	}
	for i := range n {
		m.Items = append(m.Items, Item{Path: fmt.Sprintf("%s/%03d.png", m.Classes[i%2], i), Label: i % 2, Size: int64(100 + i),
			ModTime: time.Date(2024, 1, 2, 3, 4, 5, i, time.UTC)})
	}
	return m
}

// rowValues is a deterministic fill: row r's features, label and maps.
func rowValues(m *Manifest, start, n int) (f []float32, l []int32, mp []float32) {
	mapLen := 0
	if m.MapsShape != nil {
		mapLen = m.NumViews() * m.MapsShape[0] * m.MapsShape[1] * m.MapsShape[2]
	}
	for r := start; r < start+n; r++ {
		for j := range m.NumViews() * m.FeatureDim {
			f = append(f, float32(r)+float32(j)/8)
		}
		l = append(l, int32(m.Items[r].Label))
		for j := range mapLen {
			mp = append(mp, float32(r*mapLen+j)/4)
		}
	}
	return f, l, mp
}

// fill writes the given chunks in batches of batch rows.
func fill(t *testing.T, w *Writer, chunks []Range, batch int) {
	t.Helper()
	m := w.Manifest()
	for _, c := range chunks {
		for s := c.Start; s < c.End; s += batch {
			n := min(batch, c.End-s)
			f, l, mp := rowValues(m, s, n)
			if err := w.Write(s, f, l, mp); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc              string
		n, dim, chunk, bs int
		maps              []int
	}{
		{"features only", 10, 5, 4, 2, nil},
		{"with maps", 7, 3, 3, 3, []int{2, 2, 3}},
		{"one row", 1, 1, 8, 8, []int{1, 1, 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			w, err := Create(dir, testManifest(tc.n, tc.dim, tc.chunk, tc.maps))
			if err != nil {
				t.Fatal(err)
			}
			fill(t, w, w.Manifest().Pending(), tc.bs)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			f, l, mp := rowValues(c.Manifest, 0, tc.n)
			if !slices.Equal(c.Features, f) || !slices.Equal(c.Labels, l) {
				t.Errorf("features or labels differ")
			}
			if tc.maps != nil {
				got := make([]float32, len(c.Maps))
				F16ToF32(got, c.Maps)
				want := make([]uint16, len(mp))
				F32ToF16(want, mp)
				if !slices.Equal(c.Maps, want) {
					t.Errorf("maps differ")
				}
				if got := c.Map(tc.n - 1); len(got) != c.MapLen() {
					t.Errorf("Map row has %d values", len(got))
				}
			} else if c.Maps != nil {
				t.Errorf("maps without --maps")
			}
			if got := c.Feature(tc.n - 1); !slices.Equal(got, f[(tc.n-1)*tc.dim:]) {
				t.Errorf("Feature(last) = %v", got)
			}
			if err := c.Verify(context.Background()); err != nil {
				t.Error(err)
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestIncompleteAndResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := testManifest(10, 4, 3, []int{1, 2, 2}) // chunks [0,3) [3,6) [6,9) [9,10)
	w, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	pending := w.Manifest().Pending()
	fill(t, w, pending[:2], 2)
	// half of the third chunk: written to disk but not recorded
	f, l, mp := rowValues(w.Manifest(), 6, 2)
	if err := w.Write(6, f, l, mp); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	if _, err := Open(dir); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "6 of 10 rows done") {
		t.Fatalf("Open of an unfinished cache: %v", err)
	}
	w, err = Resume(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	pending = w.Manifest().Pending()
	if want := []Range{{Start: 6, End: 9}, {Start: 9, End: 10}}; len(pending) != 2 || pending[0].Start != 6 || pending[1].End != 10 {
		t.Fatalf("pending %v, want %v", pending, want)
	}
	fill(t, w, pending, 3)
	w.Close()

	// A cache written in one go has the same bytes.
	dir2 := t.TempDir()
	w2, err := Create(dir2, testManifest(10, 4, 3, []int{1, 2, 2}))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w2, w2.Manifest().Pending(), 3)
	w2.Close()
	for _, a := range m.Arrays() {
		b1, _ := os.ReadFile(filepath.Join(dir, a.File))
		b2, _ := os.ReadFile(filepath.Join(dir2, a.File))
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s differs between the resumed and the uninterrupted cache", a.File)
		}
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, testManifest(10, 2, 4, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, l, _ := rowValues(w.Manifest(), 1, 2)
	if err := w.Write(1, f, l, nil); err == nil {
		t.Error("write in the middle of a chunk accepted")
	}
	f, l, _ = rowValues(w.Manifest(), 0, 5)
	if err := w.Write(0, f, l, nil); err == nil {
		t.Error("write across a chunk end accepted")
	}
}

func TestVerifyDetectsChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, testManifest(6, 2, 3, nil))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending()[:1], 3)
	w.Close()
	p := filepath.Join(dir, FeaturesFile)
	b, _ := os.ReadFile(p)
	b[len(encodeNpyHeader(Float32, []int{6, 2}))] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(context.Background(), dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), FeaturesFile) {
		t.Errorf("Resume over a changed file: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	complete := func(t *testing.T) string {
		dir := t.TempDir()
		w, err := Create(dir, testManifest(4, 2, 2, nil))
		if err != nil {
			t.Fatal(err)
		}
		fill(t, w, w.Manifest().Pending(), 2)
		w.Close()
		return dir
	}
	for _, tc := range []struct {
		desc  string
		setup func(t *testing.T) string
		want  string
		is    error // nil: not checked
	}{
		{"missing folder", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "not a cache folder", ErrNotCache},
		{"a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			os.WriteFile(p, []byte("x"), 0o644)
			return p
		}, "is a file", nil},
		{"truncated array", func(t *testing.T) string {
			dir := complete(t)
			os.Truncate(filepath.Join(dir, FeaturesFile), 70)
			return dir
		}, FeaturesFile, ErrNotNpy},
		{"array cut short", func(t *testing.T) string {
			dir := complete(t)
			os.Truncate(filepath.Join(dir, FeaturesFile), int64(len(encodeNpyHeader(Float32, []int{4, 2})))+8)
			return dir
		}, "truncated or overwritten", ErrCorrupt},
		{"array of another shape", func(t *testing.T) string {
			dir := complete(t)
			os.WriteFile(filepath.Join(dir, LabelsFile), append(encodeNpyHeader(Int32, []int{5}), make([]byte, 20)...), 0o644)
			return dir
		}, LabelsFile, ErrCorrupt},
		{"not json", func(t *testing.T) string {
			dir := complete(t)
			os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644)
			return dir
		}, ManifestFile, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Open(tc.setup(t))
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a flag", err)
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	t.Parallel()
	t.Run("a file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, nil, 0o644)
		if _, err := Create(p, testManifest(2, 1, 1, nil)); err == nil || !strings.Contains(err.Error(), "is a file") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a folder with other files", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "thesis.tex"), nil, 0o644)
		if _, err := Create(dir, testManifest(2, 1, 1, nil)); err == nil || !strings.Contains(err.Error(), "thesis.tex") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("replaces a cache and its maps", func(t *testing.T) {
		dir := t.TempDir()
		w, err := Create(dir, testManifest(2, 1, 1, []int{1, 1, 1}))
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		w, err = Create(dir, testManifest(3, 2, 2, nil))
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if _, err := os.Stat(filepath.Join(dir, MapsFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale maps.npy kept: %v", err)
		}
	})
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "cache")
	defer os.RemoveAll(dir)
	m := &Manifest{
		Fingerprint: Fingerprint(FingerprintInput{ExtractorSHA256: "0123", Preset: "vgg16-torchvision", Size: 224, Interpolation: "bilinear"}),
		Classes:     []string{"cat", "dog"},
		N:           2, ChunkSize: 8, FeatureDim: 3,
		Items: []Item{{Path: "cat/1.png", Label: 0}, {Path: "dog/1.png", Label: 1}},
	}
	w, err := Create(dir, m)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Write(0, []float32{1, 2, 3, 4, 5, 6}, []int32{0, 1}, nil); err != nil {
		fmt.Println(err)
	}
	w.Close()

	c, err := Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Manifest.N, c.Manifest.Classes, c.Feature(1), c.Labels)
	// Output: 2 [cat dog] [4 5 6] [0 1]
}

func TestDrop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := testManifest(9, 2, 4, []int{1, 1, 2}) // chunks [0,4) [4,8) [8,9)
	w, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending()[:1], 2)
	f, l, mp := rowValues(w.Manifest(), 4, 2)
	if err := w.Write(4, f, l, mp); err != nil {
		t.Fatal(err)
	}
	if err := w.Drop(1, "in a finished chunk"); err == nil {
		t.Error("dropped a finished row")
	}
	dropped := w.Manifest().Items[5].Path
	if err := w.Drop(5, "truncated"); err != nil {
		t.Fatal(err)
	}
	got := w.Manifest()
	if got.N != 8 || len(got.Items) != 8 || len(got.Skipped) != 1 || got.Skipped[0].Path != dropped || got.Skipped[0].Reason != "truncated" {
		t.Fatalf("manifest after Drop: n %d, skipped %+v", got.N, got.Skipped)
	}
	if p := got.Pending(); len(p) != 1 || p[0].Start != 4 || p[0].End != 8 {
		t.Fatalf("pending %v", p)
	}
	fill(t, w, got.Pending(), 2)
	w.Close()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Labels) != 8 || len(c.Features) != 16 || len(c.Maps) != 16 {
		t.Fatalf("arrays of %d, %d, %d values", len(c.Labels), len(c.Features), len(c.Maps))
	}
	if err := c.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRepairsInterruptedDrop simulates a run killed between Drop's
// manifest write and the array resize: the arrays still say N+1.
func TestResumeRepairsInterruptedDrop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, testManifest(6, 2, 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending()[:1], 2)
	w.Close()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Skipped = append(m.Skipped, Skipped{Item: m.Items[3], Reason: "corrupt"})
	m.Items = slices.Delete(m.Items, 3, 4)
	m.N--
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	w, err = Resume(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending(), 2)
	w.Close()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 5 || len(c.Labels) != 5 {
		t.Fatalf("%d rows", len(c.Labels))
	}
}

func TestWriteRejectsNegativeStart(t *testing.T) {
	t.Parallel()
	// Between chunks the Writer's next row is -1; a start of -1 used to pass
	// as "the next row", write into the .npy header and record a chunk [0,0).
	dir := t.TempDir()
	w, err := Create(dir, testManifest(4, 2, 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(-1, []float32{1, 2}, []int32{0}, nil); err == nil {
		t.Error("write at row -1 accepted")
	}
	if d := w.Manifest().Done; len(d) != 0 {
		t.Errorf("done %v after a rejected write", d)
	}
	for _, a := range w.Manifest().Arrays() {
		f, err := os.Open(filepath.Join(dir, a.File))
		if err != nil {
			t.Fatal(err)
		}
		_, err = checkArrayFile(f, a.File, a)
		f.Close()
		if err != nil {
			t.Errorf("header damaged: %v", err)
		}
	}
}

// TestOpenChecksChunks flips one byte inside a finished chunk of each array:
// Open stops with the file and the chunk's rows; OpenFeatures, which does not
// map the maps, is not stopped by a flip in maps.npy.
func TestOpenChecksChunks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, file string
		row        int // the row whose first byte is flipped
		want       string
	}{
		{"features", FeaturesFile, 4, "rows [3,6)"},
		{"labels", LabelsFile, 1, "rows [0,3)"},
		{"maps", MapsFile, 5, "rows [3,6)"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, err := Create(dir, testManifest(6, 2, 3, []int{2, 2, 2}))
			if err != nil {
				t.Fatal(err)
			}
			fill(t, w, w.Manifest().Pending(), 3)
			w.Close()
			var a ArraySpec
			for _, s := range w.Manifest().Arrays() {
				if s.File == tc.file {
					a = s
				}
			}
			p := filepath.Join(dir, tc.file)
			b, _ := os.ReadFile(p)
			off := int64(len(encodeNpyHeader(a.DType, a.Shape)))
			// A label flip would first fail the label check; flip a high bit
			// of the label's top byte, which the checksum catches first.
			b[off+int64(tc.row)*a.RowBytes()+a.RowBytes()-1] ^= 0x40
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir)
			if err == nil {
				c.Close()
				t.Fatal("Open: no error")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v; want ErrCorrupt naming %s and %s", err, p, tc.want)
			}
			c, err = OpenFeatures(dir)
			if tc.file == MapsFile {
				if err != nil {
					t.Errorf("OpenFeatures with a changed maps.npy: %v", err)
				} else if c.Maps != nil {
					t.Error("OpenFeatures mapped the maps")
				}
			} else if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenFeatures: %v; want ErrCorrupt naming %s", err, tc.want)
			}
			c.Close()
		})
	}
}

// TestVerifyCancelled: a cancelled context stops Verify and Resume with its
// error instead of reading every finished chunk.
func TestVerifyCancelled(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testManifest(10, 3, 3, nil))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending()[:2], 2)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Verify(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify: %v, want context.Canceled", err)
	}
	if _, err := Resume(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("Resume: %v, want context.Canceled", err)
	}
	if err := Verify(context.Background(), dir); err != nil {
		t.Errorf("Verify after the cancelled ones: %v", err)
	}
}
