package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// direct is what the Loader must produce for one item.
func direct(t *testing.T, src *Source, i int, s LoaderSettings) []float32 {
	t.Helper()
	img, err := src.Decode(i)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 3*s.Size*s.Size)
	Preprocess(out, 0, Resize(img, s.Size, s.Interpolation), s.Preprocessing)
	return out
}

func loaderDataset(t *testing.T) *Source {
	files := map[string]int{}
	for c, class := range []string{"cat", "dog", "emu"} {
		for i := range 3 + c {
			files[fmt.Sprintf("%s/%02d.png", class, i)] = 5 + 3*i + c // various sizes, some already 8×8
		}
	}
	dir := makeDataset(t, files)
	fixtures.WriteFile(t, filepath.Join(dir, "dog", "01.png"), encode(t, "jpeg", testImage(13, 7, 4)))
	src, err := Open(dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestLoader(t *testing.T) {
	t.Parallel()
	src := loaderDataset(t)
	for _, tc := range []struct {
		desc string
		s    LoaderSettings
		idx  []int
	}{
		{"torchvision nearest", LoaderSettings{Size: 8, Batch: 4, Preprocessing: TorchvisionPreprocessing}, nil},
		{"caffe bilinear one worker", LoaderSettings{Size: 8, Batch: 5, Workers: 1, Interpolation: Bilinear, Preprocessing: CaffePreprocessing}, []int{11, 0, 5, 3, 3, 7}},
		{"batch larger than the items", LoaderSettings{Size: 6, Batch: 64, Workers: 3, Interpolation: Lanczos3, Preprocessing: TorchvisionPreprocessing}, []int{2, 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			l, err := NewLoader(src, tc.idx, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			idx := tc.idx
			if idx == nil {
				for i := range src.Items {
					idx = append(idx, i)
				}
			}
			if want := (len(idx) + tc.s.Batch - 1) / tc.s.Batch; l.Len() != want {
				t.Errorf("Len() = %d, want %d", l.Len(), want)
			}
			dst := make([]float32, l.BatchLen())
			var seen []int
			for k := 0; ; k++ {
				b, err := l.Next(context.Background(), dst)
				if err == io.EOF {
					if k != l.Len() {
						t.Errorf("EOF after %d batches, want %d", k, l.Len())
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if b.Start != k*tc.s.Batch || b.Count != len(b.Indices) || len(b.Labels) != b.Count || len(b.Bad) != 0 {
					t.Fatalf("batch %d: %+v", k, b)
				}
				for j, i := range b.Indices {
					if b.Labels[j] != src.Items[i].Label {
						t.Errorf("label of item %d = %d, want %d", i, b.Labels[j], src.Items[i].Label)
					}
					want := direct(t, src, i, l.Settings())
					if got := dst[j*l.ImageLen() : (j+1)*l.ImageLen()]; !reflect.DeepEqual(got, want) {
						t.Errorf("batch %d image %d (item %d) differs from decode+resize+preprocess", k, j, i)
					}
				}
				seen = append(seen, b.Indices...)
			}
			if !reflect.DeepEqual(seen, idx) {
				t.Errorf("items %v, want %v", seen, idx)
			}
			if _, err := l.Next(context.Background(), dst); err != io.EOF {
				t.Errorf("after the end: %v, want io.EOF", err)
			}
		})
	}
}

func TestLoaderBadImages(t *testing.T) {
	t.Parallel()
	src := loaderDataset(t)
	bad := []int{1, 4, 5}
	for _, i := range bad {
		fixtures.WriteFile(t, src.Path(i), []byte("not an image"))
	}
	s := LoaderSettings{Size: 4, Batch: 3}

	t.Run("stop", func(t *testing.T) {
		l, err := NewLoader(src, nil, s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dst := make([]float32, l.BatchLen())
		_, err = l.Next(context.Background(), dst)
		var de *DecodeError
		if !errors.As(err, &de) || de.Path != src.Path(1) {
			t.Fatalf("got %v, want a *DecodeError for %s", err, src.Path(1))
		}
		if _, err2 := l.Next(context.Background(), dst); err2 != err {
			t.Errorf("next call: %v, want the same error", err2)
		}
	})
	t.Run("skip", func(t *testing.T) {
		s := s
		s.SkipBad = true
		l, err := NewLoader(src, nil, s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dst := make([]float32, l.BatchLen())
		var got, gotBad []int
		for {
			b, err := l.Next(context.Background(), dst)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for j, i := range b.Indices {
				if want := direct(t, src, i, l.Settings()); !reflect.DeepEqual(dst[j*l.ImageLen():(j+1)*l.ImageLen()], want) {
					t.Errorf("item %d at %d of its batch: wrong values after skipping", i, j)
				}
			}
			got = append(got, b.Indices...)
			for _, e := range b.Bad {
				for _, i := range bad {
					if src.Path(i) == e.Path {
						gotBad = append(gotBad, i)
					}
				}
			}
		}
		if !reflect.DeepEqual(gotBad, bad) {
			t.Errorf("bad %v, want %v", gotBad, bad)
		}
		if len(got) != len(src.Items)-len(bad) {
			t.Errorf("%d good items, want %d", len(got), len(src.Items)-len(bad))
		}
	})
}

func TestLoaderCancelAndClose(t *testing.T) {
	t.Parallel()
	src := loaderDataset(t)
	l, err := NewLoader(src, nil, LoaderSettings{Size: 4, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, l.BatchLen())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Next(ctx, dst); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// The batch prepared meanwhile is not lost.
	if b, err := l.Next(context.Background(), dst); err != nil || b.Start != 0 {
		t.Errorf("after cancel: %+v, %v", b, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Next(context.Background(), dst); !errors.Is(err, ErrLoaderClosed) {
		t.Errorf("after Close: %v", err)
	}
	unused, _ := NewLoader(src, nil, LoaderSettings{})
	if err := unused.Close(); err != nil {
		t.Errorf("Close without Next: %v", err)
	}
}

func TestNewLoaderErrors(t *testing.T) {
	t.Parallel()
	src := loaderDataset(t)
	for _, tc := range []struct {
		desc string
		idx  []int
		s    LoaderSettings
		want string
	}{
		{"index", []int{0, 99}, LoaderSettings{}, "index 99"},
		{"size", nil, LoaderSettings{Size: -1}, "size -1"},
		{"batch", nil, LoaderSettings{Batch: -2}, "batch -2"},
		{"interpolation", nil, LoaderSettings{Interpolation: "area"}, `"area"`},
		{"preprocessing", nil, LoaderSettings{Preprocessing: Preprocessing{Layout: "CHWN"}}, "channel order"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := NewLoader(src, tc.idx, tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestLoaderHandBuiltSource checks a Source made without Open (as tests of
// other packages do) decodes with the default pixel limit.
func TestLoaderHandBuiltSource(t *testing.T) {
	t.Parallel()
	opened := loaderDataset(t)
	src := &Source{Dir: opened.Dir, Classes: opened.Classes, Items: opened.Items[:3]}
	l, err := NewLoader(src, nil, LoaderSettings{Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if b, err := l.Next(context.Background(), make([]float32, l.BatchLen())); err != nil || b.Count != 3 {
		t.Errorf("got %+v, %v", b, err)
	}
}
