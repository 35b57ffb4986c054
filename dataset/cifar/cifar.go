package cifar

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/dataset/internal/convert"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// CIFAR-10 as distributed at https://www.cs.toronto.edu/~kriz/cifar.html:
// the python version (cifar-10-python.tar.gz, folder cifar-10-batches-py)
// holds pickled dicts data_batch_1..5, test_batch and batches.meta; the
// binary version (cifar-10-binary.tar.gz, cifar-10-batches-bin) holds
// data_batch_1..5.bin and test_batch.bin, records of 1 label byte and 3072
// pixel bytes, and batches.meta.txt with one class name per line. In both,
// an image is 1024 red, then 1024 green, then 1024 blue bytes, rows top to
// bottom.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarPixels
	// maxCIFARMember bounds what is read into memory for one pickled batch
	// (a real one is 31 MB).
	maxCIFARMember = 1 << 30
	// maxMetaBytes bounds a class-name file.
	maxMetaBytes = 1 << 20
)

// Formats reported in dataset.ConvertSummary.Format.
const (
	FormatPython = "cifar10-python" // pickled batches (cifar-10-python.tar.gz)
	FormatBinary = "cifar10-binary" // records of label and pixels (cifar-10-binary.tar.gz)
)

var cifarTrainBatches = []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"}

const cifarTestBatch = "test_batch"

// cifarKind tells the two versions apart by their file names.
type cifarKind struct {
	format string
	suffix string // of batch files
	meta   string
}

var (
	cifarPython = cifarKind{FormatPython, "", "batches.meta"}
	cifarBinary = cifarKind{FormatBinary, ".bin", "batches.meta.txt"}
)

// cifarMember maps a file's base name to its version and batch ("" for
// the class-name file); ok is false for files that are not CIFAR-10's.
func cifarMember(base string) (k cifarKind, batch string, ok bool) {
	for _, k := range []cifarKind{cifarPython, cifarBinary} {
		if base == k.meta {
			return k, "", true
		}
		for _, b := range append(cifarTrainBatches[:len(cifarTrainBatches):len(cifarTrainBatches)], cifarTestBatch) {
			if base == b+k.suffix {
				return k, b, true
			}
		}
	}
	return cifarKind{}, "", false
}

// Convert writes the CIFAR-10 images of src (the python or binary
// version: its .tar.gz, a .tar, or an unpacked folder) as PNG class folders
// out/train/<class>/ and out/test/<class>/. The python version keeps its
// original file names (its "filenames" entries); the binary version has
// none, so images are named by their index in the split (00000.png). With
// TrainPerClass/TestPerClass only the first N images of each class, in
// batch order, are written. Each PNG is written atomically. out must be
// empty or new unless s.Overwrite. Errors name the file (and the archive
// member) at fault.
func Convert(ctx context.Context, src, out string, s dataset.ConvertSettings) (*dataset.ConvertSummary, error) {
	if err := convert.Check("cifar", s); err != nil {
		return nil, err
	}
	in, err := openCIFARInput(src)
	if err != nil {
		return nil, err
	}
	// Pass 1 reads labels, names and class names: an archive stores its
	// members in any order, and which images a subset keeps depends on the
	// batch order. Pass 2 reads the pixels and writes; memory holds one
	// batch at a time.
	sc := &cifarScan{batches: map[string]*cifarBatch{}, where: map[string]string{}}
	if err := in.each(ctx, sc.add); err != nil {
		return nil, err
	}
	kind, classes, err := sc.check(in.String())
	if err != nil {
		return nil, err
	}
	plan := sc.plan(kind, classes, s)
	sum := &dataset.ConvertSummary{Format: kind.format, Classes: classes, Train: plan.counts[0], Test: plan.counts[1]}

	lock, restarted, err := convert.Begin("cifar", src, out, s)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	for i, split := range []string{"train", "test"} {
		if err := convert.ClassDirs("cifar", out, split, classes, plan.counts[i]); err != nil {
			return nil, err
		}
	}
	prog := progress.OrNop(s.Progress)
	prog.Start("writing cifar10 images", plan.total, 0)
	defer prog.Finish()
	w := convert.NewPNGWriter("cifar", prog)
	left := len(plan.paths)
	err = in.each(ctx, func(base, where string, r io.Reader, size int64) error {
		_, batch, _ := cifarMember(base)
		paths, ok := plan.paths[batch]
		if batch == "" || !ok {
			return nil
		}
		want := sc.batches[batch]
		put := func(i int, label uint8, pix []byte) error {
			if i >= len(want.labels) || want.labels[i] != label {
				return fmt.Errorf("cifar: %s changed while it was being converted", where)
			}
			if paths[i] == "" {
				return nil
			}
			return w.Write(ctx, filepath.Join(out, filepath.FromSlash(paths[i])), cifarImage(pix))
		}
		var rerr error
		if kind == cifarBinary {
			rerr = readCIFARBinary(ctx, r, size, where, len(classes), put)
		} else {
			rerr = readCIFARPython(r, size, where, len(classes), put)
		}
		if rerr != nil {
			return rerr
		}
		if left--; left == 0 {
			return errStopEach
		}
		return nil
	})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dataset.FinishOutput(out)
	}
	if err != nil {
		return nil, err
	}
	sum.Restarted = restarted
	return sum, nil
}

// cifarImage turns one record's planar pixels into an image.
func cifarImage(pix []byte) *image.RGBA {
	const n = cifarSide * cifarSide
	img := image.NewRGBA(image.Rect(0, 0, cifarSide, cifarSide))
	for p := range n {
		img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = pix[p], pix[n+p], pix[2*n+p], 0xff
	}
	return img
}

type cifarBatch struct {
	kind   cifarKind
	labels []uint8
	names  []string // python version only
}

type cifarScan struct {
	batches map[string]*cifarBatch
	where   map[string]string // base name -> where it was found, for errors
	classes map[cifarKind][]string
}

func (sc *cifarScan) add(base, where string, r io.Reader, size int64) error {
	kind, batch, ok := cifarMember(base)
	if !ok {
		return nil
	}
	if w, dup := sc.where[base]; dup {
		return fmt.Errorf("cifar: %s appears twice: %s and %s", base, w, where)
	}
	sc.where[base] = where
	if batch == "" {
		data, err := readMember(r, size, maxMetaBytes, where)
		if err != nil {
			return err
		}
		var classes []string
		if kind == cifarPython {
			classes, err = parseCIFARPythonMeta(data)
		} else {
			classes, err = parseCIFARBinaryMeta(data)
		}
		if err != nil {
			return fmt.Errorf("cifar: %s: %w", where, err)
		}
		if sc.classes == nil {
			sc.classes = map[cifarKind][]string{}
		}
		sc.classes[kind] = classes
		return nil
	}
	b := &cifarBatch{kind: kind}
	// Labels are checked against the class count after the scan, when
	// batches.meta (which may come later) has been read.
	record := func(i int, label uint8, _ []byte) error {
		b.labels = append(b.labels, label)
		return nil
	}
	if kind == cifarBinary {
		if err := readCIFARBinary(context.Background(), r, size, where, 256, record); err != nil {
			return err
		}
	} else {
		data, err := readMember(r, size, maxCIFARMember, where)
		if err != nil {
			return err
		}
		pb, err := parseCIFARPythonBatch(data)
		if err != nil {
			return fmt.Errorf("cifar: %s: %w", where, err)
		}
		b.labels, b.names = pb.labels, pb.names
	}
	sc.batches[batch] = b
	return nil
}

// check picks the version, and checks that it is complete and that every
// label has a class.
func (sc *cifarScan) check(src string) (cifarKind, []string, error) {
	var kinds []cifarKind
	for _, k := range []cifarKind{cifarPython, cifarBinary} {
		for _, b := range sc.batches {
			if b.kind == k {
				kinds = append(kinds, k)
				break
			}
		}
	}
	switch len(kinds) {
	case 0:
		return cifarKind{}, nil, fmt.Errorf("cifar: %s has no CIFAR-10 batches (want the python version's data_batch_1..5 and test_batch, or the binary version's data_batch_1.bin..5.bin and test_batch.bin)", src)
	case 2:
		return cifarKind{}, nil, fmt.Errorf("cifar: %s holds batches of both the python and the binary version; give one", src)
	}
	kind := kinds[0]
	var missing []string
	for _, b := range append(cifarTrainBatches[:len(cifarTrainBatches):len(cifarTrainBatches)], cifarTestBatch) {
		if sc.batches[b] == nil {
			missing = append(missing, b+kind.suffix)
		}
	}
	classes := sc.classes[kind]
	if classes == nil {
		missing = append(missing, kind.meta)
	}
	if len(missing) > 0 {
		return kind, nil, fmt.Errorf("cifar: %s lacks %s", src, strings.Join(missing, ", "))
	}
	if err := checkClassNames(sc.where[kind.meta], classes); err != nil {
		return kind, nil, err
	}
	for name, b := range sc.batches {
		for i, l := range b.labels {
			if int(l) >= len(classes) {
				return kind, nil, fmt.Errorf("cifar: %s: image %d has label %d, but %s names %d classes", sc.where[name+kind.suffix], i, l, kind.meta, len(classes))
			}
		}
	}
	return kind, classes, nil
}

type cifarPlan struct {
	paths  map[string][]string // batch -> output path per record ("" = not written)
	counts [2][]int            // train, test: images per class
	total  int
}

// plan picks the images to write and their names.
func (sc *cifarScan) plan(kind cifarKind, classes []string, s dataset.ConvertSettings) cifarPlan {
	p := cifarPlan{paths: map[string][]string{}}
	for si, split := range []struct {
		name    string
		batches []string
		limit   int
	}{
		{"train", cifarTrainBatches, s.TrainPerClass},
		{"test", []string{cifarTestBatch}, s.TestPerClass},
	} {
		counts := make([]int, len(classes))
		used := make([]map[string]bool, len(classes))
		index := 0 // position in the split, for index names
		for _, batch := range split.batches {
			b := sc.batches[batch]
			paths := make([]string, len(b.labels))
			for i, l := range b.labels {
				pos := index
				index++
				if split.limit > 0 && counts[l] >= split.limit {
					continue
				}
				name := fmt.Sprintf("%05d.png", pos)
				if kind == cifarPython && i < len(b.names) {
					name = cifarFileName(b.names[i], pos, used[l])
				}
				if used[l] == nil {
					used[l] = map[string]bool{}
				}
				used[l][name] = true
				paths[i] = split.name + "/" + classes[l] + "/" + name
				counts[l]++
				p.total++
			}
			p.paths[batch] = paths
		}
		p.counts[si] = counts
	}
	return p
}

// cifarFileName makes a stored name safe as a file name and unique in its
// class folder; CIFAR-10's own names are already both.
func cifarFileName(name string, pos int, used map[string]bool) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || strings.HasPrefix(name, ".") || strings.ContainsRune(name, 0) {
		return fmt.Sprintf("%05d.png", pos)
	}
	if !strings.EqualFold(path.Ext(name), ".png") {
		name += ".png"
	}
	if used[name] {
		ext := path.Ext(name)
		name = fmt.Sprintf("%s_%05d%s", strings.TrimSuffix(name, ext), pos, ext)
	}
	return name
}

// readMember reads a whole file or archive member of a known size.
func readMember(r io.Reader, size, limit int64, where string) ([]byte, error) {
	if size < 0 || size > limit {
		return nil, fmt.Errorf("cifar: %s: %d bytes, more than the %d expected", where, size, limit)
	}
	// The buffer grows with what arrives rather than taking the header's
	// word: a cut or forged archive member may claim up to the limit.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20)))
	n, err := buf.ReadFrom(io.LimitReader(r, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("cifar: read %s: %w", where, convert.Truncated(err))
	}
	return buf.Bytes(), nil
}

// readCIFARBinary calls fn for each record of a binary batch.
func readCIFARBinary(ctx context.Context, r io.Reader, size int64, where string, classes int, fn func(i int, label uint8, pix []byte) error) error {
	if size%cifarRecord != 0 {
		return fmt.Errorf("cifar: %s: %d bytes is not a whole number of %d-byte records (truncated?)", where, size, cifarRecord)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	rec := make([]byte, cifarRecord)
	for i := range int(size / cifarRecord) {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := io.ReadFull(br, rec); err != nil {
			return fmt.Errorf("cifar: read %s: record %d: %w", where, i, convert.Truncated(err))
		}
		if int(rec[0]) >= classes {
			return fmt.Errorf("cifar: %s: record %d has label %d, want 0..%d", where, i, rec[0], classes-1)
		}
		if err := fn(i, rec[0], rec[1:]); err != nil {
			return err
		}
	}
	return nil
}

// readCIFARPython calls fn for each image of a pickled batch.
func readCIFARPython(r io.Reader, size int64, where string, classes int, fn func(i int, label uint8, pix []byte) error) error {
	data, err := readMember(r, size, maxCIFARMember, where)
	if err != nil {
		return err
	}
	b, err := parseCIFARPythonBatch(data)
	if err != nil {
		return fmt.Errorf("cifar: %s: %w", where, err)
	}
	for i, l := range b.labels {
		if int(l) >= classes {
			return fmt.Errorf("cifar: %s: image %d has label %d, want 0..%d", where, i, l, classes-1)
		}
		if err := fn(i, l, b.pixels[i*cifarPixels:(i+1)*cifarPixels]); err != nil {
			return err
		}
	}
	return nil
}

type cifarPythonBatch struct {
	labels []uint8
	names  []string
	pixels []byte
}

// unpickleDict reads a pickle whose top object must be a dict, as every
// CIFAR python file is.
func unpickleDict(data []byte) (*pyDict, error) {
	v, err := unpickle(data)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("pickle holds %s, want a dict", pyTypeName(v))
	}
	return d, nil
}

// parseCIFARPythonBatch reads the dict {"data": uint8 array [N,3072],
// "labels": N ints, "filenames": N names, ...} of one pickled batch.
func parseCIFARPythonBatch(data []byte) (*cifarPythonBatch, error) {
	d, err := unpickleDict(data)
	if err != nil {
		return nil, err
	}
	dv, ok := d.get("data")
	if !ok {
		return nil, errors.New(`batch has no "data" entry`)
	}
	arr, err := toNDArray(dv)
	if err != nil {
		return nil, fmt.Errorf(`batch "data": %w`, err)
	}
	if arr.kind != 'u' || arr.itemsize != 1 || len(arr.shape) < 1 || (arr.shape[0] > 0 && len(arr.data)/arr.shape[0] != cifarPixels) {
		return nil, fmt.Errorf(`batch "data" is a %c%d array of shape %v, want uint8 [N, 3072]`, arr.kind, arr.itemsize, arr.shape)
	}
	n := arr.shape[0]
	lv, ok := d.get("labels")
	if !ok {
		return nil, errors.New(`batch has no "labels" entry (a CIFAR-100 batch?)`)
	}
	labels, err := pyInts(lv)
	if err != nil {
		return nil, fmt.Errorf(`batch "labels": %w`, err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("batch has %d images and %d labels", n, len(labels))
	}
	b := &cifarPythonBatch{labels: make([]uint8, n), pixels: arr.data}
	for i, l := range labels {
		if l < 0 || l > 255 {
			return nil, fmt.Errorf("image %d has label %d", i, l)
		}
		b.labels[i] = uint8(l)
	}
	if fv, ok := d.get("filenames"); ok {
		l, ok := fv.(*pyList)
		if !ok || len(l.items) != n {
			return nil, fmt.Errorf(`batch "filenames" is %s, want a list of %d names`, pyTypeName(fv), n)
		}
		b.names = make([]string, n)
		for i, x := range l.items {
			if b.names[i], ok = pyText(x); !ok {
				return nil, fmt.Errorf(`batch "filenames"[%d] is %s, want a string`, i, pyTypeName(x))
			}
		}
	}
	return b, nil
}

// pyInts reads a list of ints or an integer NumPy array.
func pyInts(v any) ([]int64, error) {
	if l, ok := v.(*pyList); ok {
		out := make([]int64, len(l.items))
		for i, x := range l.items {
			n, ok := pyInt(x)
			if !ok {
				return nil, fmt.Errorf("item %d is %s, want an int", i, pyTypeName(x))
			}
			out[i] = n
		}
		return out, nil
	}
	arr, err := toNDArray(v)
	if err != nil {
		return nil, err
	}
	return arr.ints()
}

// parseCIFARPythonMeta reads batches.meta's "label_names".
func parseCIFARPythonMeta(data []byte) ([]string, error) {
	d, err := unpickleDict(data)
	if err != nil {
		return nil, err
	}
	lv, ok := d.get("label_names")
	if !ok {
		return nil, errors.New(`no "label_names" entry`)
	}
	l, ok := lv.(*pyList)
	if !ok || len(l.items) == 0 || len(l.items) > 256 {
		return nil, fmt.Errorf(`"label_names" is %s, want a list of 1 to 256 names`, pyTypeName(lv))
	}
	names := make([]string, len(l.items))
	for i, x := range l.items {
		if names[i], ok = pyText(x); !ok {
			return nil, fmt.Errorf(`"label_names"[%d] is %s, want a string`, i, pyTypeName(x))
		}
	}
	return names, nil
}

// parseCIFARBinaryMeta reads batches.meta.txt: one class name per line,
// blank lines (the file ends with some) ignored.
func parseCIFARBinaryMeta(data []byte) ([]string, error) {
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if s := strings.TrimSpace(line); s != "" {
			names = append(names, s)
		}
	}
	if len(names) == 0 || len(names) > 256 {
		return nil, fmt.Errorf("%d class names, want 1 to 256", len(names))
	}
	return names, nil
}

// errStopEach ends an each walk early without an error.
var errStopEach = errors.New("stop")

// cifarInput is an archive or a folder of CIFAR-10 files.
type cifarInput interface {
	// each calls fn for each CIFAR-10 file, in the input's order.
	each(ctx context.Context, fn func(base, where string, r io.Reader, size int64) error) error
	String() string
}

func openCIFARInput(src string) (cifarInput, error) {
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cifar: %s does not exist", src)
		}
		return nil, fmt.Errorf("cifar: %w", err)
	}
	if !fi.IsDir() {
		return tarInput(src), nil
	}
	for _, d := range []string{src, filepath.Join(src, "cifar-10-batches-py"), filepath.Join(src, "cifar-10-batches-bin")} {
		for _, name := range []string{"data_batch_1", "data_batch_1.bin", cifarPython.meta, cifarBinary.meta} {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				return dirInput(d), nil
			}
		}
	}
	return nil, fmt.Errorf("cifar: %s has no CIFAR-10 batches (want data_batch_1..5 and test_batch of the python version, or the .bin files of the binary version, there or in cifar-10-batches-py or cifar-10-batches-bin)", src)
}

type dirInput string

func (d dirInput) String() string { return string(d) }

func (d dirInput) each(ctx context.Context, fn func(base, where string, r io.Reader, size int64) error) error {
	var names []string
	for _, k := range []cifarKind{cifarPython, cifarBinary} {
		names = append(names, k.meta)
		for _, b := range append(cifarTrainBatches[:len(cifarTrainBatches):len(cifarTrainBatches)], cifarTestBatch) {
			names = append(names, b+k.suffix)
		}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(string(d), name)
		f, err := fsutil.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cifar: %w", err)
		}
		fi, err := f.Stat()
		if err == nil {
			err = fn(name, p, f, fi.Size())
		}
		f.Close()
		if errors.Is(err, errStopEach) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type tarInput string

func (t tarInput) String() string { return string(t) }

func (t tarInput) each(ctx context.Context, fn func(base, where string, r io.Reader, size int64) error) error {
	f, err := fsutil.Open(string(t))
	if err != nil {
		return fmt.Errorf("cifar: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("cifar: read %s: %w", t, convert.Truncated(err))
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("cifar: read %s: the archive is truncated: %w", t, err)
		}
		if err != nil {
			return fmt.Errorf("cifar: read %s: %w (want a .tar.gz or .tar of CIFAR-10, or its unpacked folder)", t, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(hdr.Name)
		if _, _, ok := cifarMember(base); !ok {
			continue
		}
		err = fn(base, fmt.Sprintf("%s (%s)", t, hdr.Name), tr, hdr.Size)
		if errors.Is(err, errStopEach) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checkClassNames rejects class names that cannot be folder names.
func checkClassNames(where string, classes []string) error {
	seen := map[string]bool{}
	for i, c := range classes {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\\x00") || strings.HasPrefix(c, ".") {
			return fmt.Errorf("cifar: %s: class %d is named %q, which cannot be a folder name", where, i, c)
		}
		if seen[c] {
			return fmt.Errorf("cifar: %s: class name %q appears twice", where, c)
		}
		seen[c] = true
	}
	return nil
}
