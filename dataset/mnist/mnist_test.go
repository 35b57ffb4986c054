package mnist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/progress"
)

type fakeMNIST struct {
	labels []uint8
	pix    []byte // n × rows × cols
	rows   int
	cols   int
}

func makeMNIST(n, rows, cols, seed int) fakeMNIST {
	m := fakeMNIST{rows: rows, cols: cols}
	for i := range n {
		m.labels = append(m.labels, uint8((i*3+seed)%10))
		for p := range rows * cols {
			m.pix = append(m.pix, uint8(p*5+i*17+seed))
		}
	}
	return m
}

// writeMNIST writes the four IDX files into a new folder, gzipped as in
// GoMNIST's data folder or plain.
func writeMNIST(t *testing.T, train, test fakeMNIST, gz bool) string {
	dir := t.TempDir()
	for _, s := range []struct {
		prefix string
		m      fakeMNIST
	}{{"train", train}, {"t10k", test}} {
		images := idxFile([]int{len(s.m.labels), s.m.rows, s.m.cols}, s.m.pix)
		labels := idxFile([]int{len(s.m.labels)}, s.m.labels)
		suffix := ""
		if gz {
			images, labels, suffix = gzipped(t, images), gzipped(t, labels), ".gz"
		}
		fixtures.WriteFile(t, filepath.Join(dir, s.prefix+"-images-idx3-ubyte"+suffix), images)
		fixtures.WriteFile(t, filepath.Join(dir, s.prefix+"-labels-idx1-ubyte"+suffix), labels)
	}
	return dir
}

func TestConvert(t *testing.T) {
	t.Parallel()
	train, test := makeMNIST(57, 28, 28, 1), makeMNIST(23, 28, 28, 4)
	for _, tc := range []struct {
		desc        string
		gz          bool
		train, test int
	}{
		{"gzipped, all", true, 0, 0},
		{"plain, subset", false, 2, 1},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			src := writeMNIST(t, train, test, tc.gz)
			out := filepath.Join(t.TempDir(), "out")
			p := &progress.Recorder{}
			sum, err := Convert(context.Background(), src, out, dataset.ConvertSettings{TrainPerClass: tc.train, TestPerClass: tc.test, Progress: p})
			if err != nil {
				t.Fatal(err)
			}
			written := 0
			for _, s := range []struct {
				name   string
				m      fakeMNIST
				limit  int
				counts []int
			}{{"train", train, tc.train, sum.Train}, {"test", test, tc.test, sum.Test}} {
				counts := make([]int, 10)
				for i, l := range s.m.labels {
					path := filepath.Join(out, s.name, fmt.Sprint(l), fmt.Sprintf("%05d.png", i))
					if s.limit > 0 && counts[l] >= s.limit {
						if _, err := os.Stat(path); err == nil {
							t.Errorf("%s written beyond the subset", path)
						}
						continue
					}
					counts[l]++
					written++
					img, ok := fixtures.ReadPNG(t, path).(*image.Gray)
					if !ok {
						t.Fatalf("%s is not grayscale", path)
					}
					if !bytes.Equal(img.Pix, s.m.pix[i*28*28:(i+1)*28*28]) {
						t.Errorf("%s: pixels differ", path)
					}
				}
				if fmt.Sprint(counts) != fmt.Sprint(s.counts) {
					t.Errorf("%s: summary counts %v, want %v", s.name, s.counts, counts)
				}
			}
			if p.Added != written || len(p.Events) == 0 || p.Events[0] != fmt.Sprintf("start writing mnist images %d 0", written) {
				t.Errorf("progress %d added, first event %q, want %d", p.Added, p.Events[:min(1, len(p.Events))], written)
			}
			if fmt.Sprint(sum.Classes) != "[0 1 2 3 4 5 6 7 8 9]" || sum.Format != FormatIDX {
				t.Errorf("summary %+v", sum)
			}
			// The class folders open as a dataset.
			if s, err := dataset.Open(filepath.Join(out, "train"), dataset.Settings{Strict: true}); err != nil || len(s.Classes) != 10 {
				t.Errorf("open converted: %v", err)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	t.Parallel()
	good := makeMNIST(10, 4, 4, 0)
	for _, tc := range []struct {
		desc   string
		file   string
		data   []byte
		remove string
		want   []string
	}{
		{"missing file", "", nil, "t10k-labels-idx1-ubyte", []string{"no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"}},
		{"count mismatch", "train-labels-idx1-ubyte", idxFile([]int{9}, good.labels[:9]), "", []string{"train-images-idx3-ubyte has 10 images", "train-labels-idx1-ubyte has 9 labels"}},
		{"truncated images", "train-images-idx3-ubyte", idxFile([]int{10, 4, 4}, good.pix[:100]), "", []string{"train-images-idx3-ubyte", "image 6 of 10", "truncated"}},
		{"truncated labels", "t10k-labels-idx1-ubyte", idxFile([]int{10}, good.labels[:4]), "", []string{"t10k-labels-idx1-ubyte", "4 of 10 labels"}},
		{"bad label", "train-labels-idx1-ubyte", idxFile([]int{3}, []byte{1, 10, 2}), "", []string{"train-labels-idx1-ubyte", "label 1 is 10"}},
		{"not idx", "train-images-idx3-ubyte", []byte("GIF89a not idx"), "", []string{"train-images-idx3-ubyte", "not an IDX file"}},
		{"wrong dimensions", "train-images-idx3-ubyte", idxFile([]int{10, 16}, good.pix), "", []string{"2 dimensions, want 3"}},
		{"float elements", "train-labels-idx1-ubyte", []byte{0, 0, 0x0d, 1, 0, 0, 0, 0}, "", []string{"type 0x0d"}},
		{"zero-sized images", "t10k-images-idx3-ubyte", idxFile([]int{10, 0, 4}, nil), "", []string{"4×0 pixels"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			src := writeMNIST(t, good, good, false)
			if tc.file != "" {
				fixtures.WriteFile(t, filepath.Join(src, tc.file), tc.data)
			}
			if tc.remove != "" {
				os.Remove(filepath.Join(src, tc.remove))
			}
			_, err := Convert(context.Background(), src, filepath.Join(t.TempDir(), "out"), dataset.ConvertSettings{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Convert(context.Background(), filepath.Join(t.TempDir(), "nope"), t.TempDir(), dataset.ConvertSettings{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing folder: %v", err)
	}
}

// FuzzIdx feeds outside bytes to the IDX readers.
func FuzzIdx(f *testing.F) {
	m := makeMNIST(3, 5, 4, 0)
	f.Add(idxFile([]int{3, 5, 4}, m.pix))
	f.Add(idxFile([]int{3}, m.labels))
	f.Add(idxFile([]int{1 << 30, 5, 4}, m.pix))
	f.Fuzz(func(t *testing.T, data []byte) {
		if labels, err := readIdxLabels(bytes.NewReader(data), "fuzz"); err == nil {
			for _, l := range labels {
				if l > 9 {
					t.Fatalf("label %d", l)
				}
			}
		}
		im, err := readIdxImagesHeader(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		buf := make([]byte, im.rows*im.cols)
		for range min(im.n, 1000) {
			if im.next(buf) != nil {
				break
			}
		}
	})
}

// TestConvertRefusesFIFO checks that an IDX file that is a named pipe is
// refused, naming it, rather than read (which blocks until a writer comes)
// or passed over as missing.
func TestConvertRefusesFIFO(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	fifo := fixtures.FIFO(t, filepath.Join(src, "train-images-idx3-ubyte"))
	var err error
	fixtures.Within(t, 20*time.Second, func() { fixtures.UnblockFIFO(fifo) }, func() {
		_, err = Convert(context.Background(), src, filepath.Join(t.TempDir(), "out"), dataset.ConvertSettings{})
	})
	if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("err = %v, want one naming %s as a FIFO", err, fifo)
	}
}

// TestConvertSecondWriterFails holds the lock of the output folder, as a
// conversion running in another process would, and checks that a second
// conversion into it fails at once, naming the holder, and writes nothing.
func TestConvertSecondWriterFails(t *testing.T) {
	t.Parallel()
	src := writeMNIST(t, makeMNIST(10, 28, 28, 1), makeMNIST(5, 28, 28, 2), false)
	out := filepath.Join(t.TempDir(), "out")
	held, err := fsutil.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	_, err = Convert(context.Background(), src, out, dataset.ConvertSettings{})
	var le *fsutil.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), out) {
		t.Fatalf("second writer: %v, want a *fsutil.LockedError naming pid %d and %s", err, os.Getpid(), out)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it untouched (missing)", out, err)
	}
}
