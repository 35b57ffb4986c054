package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"unsafe"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// Cache is an open, complete cache. Its arrays are read-only memory maps of
// the .npy files: writing to them faults. Close unmaps them; the slices must
// not be used afterwards.
type Cache struct {
	Dir      string
	Manifest *Manifest
	Features []float32 // N*K*FeatureDim, row-major (K = Manifest.NumViews())
	Labels   []int32   // N
	Maps     []uint16  // IEEE float16 bits, N*K*C*h*w; nil without maps

	mapped [][]byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// littleEndian reports whether this machine stores numbers little-endian,
// as the .npy files do: the memory maps are used as Go slices directly.
func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Open opens the complete cache in dir and memory-maps its arrays. An
// unfinished cache is an error wrapping ErrIncomplete. Every chunk of every
// array is checked against its CRC-32C before Open returns: a reader touches
// every row (each epoch does), and a changed byte stops it here with the
// file and the rows, wrapping ErrCorrupt, instead of training on it.
func Open(dir string) (*Cache, error) { return open(dir, true, true) }

// OpenFeatures is Open without the maps (Maps stays nil), for readers of the
// features alone: it neither maps nor checks maps.npy, which is the bulk of
// a cache made with maps.
func OpenFeatures(dir string) (*Cache, error) { return open(dir, false, true) }

// open is Open; without check it skips the checksums (for the benchmark
// that measures what they cost). A cache that does not open while an extract holds the lock of its folder
// or of the folder above (extract --val writes DIR/train and DIR/val) is
// being rewritten: the error names that writer instead of the damage.
func open(dir string, withMaps, check bool) (_ *Cache, err error) {
	defer func() {
		if err == nil {
			return
		}
		if le := fsutil.Writer(dir, filepath.Dir(filepath.Clean(dir))); le != nil {
			err = fmt.Errorf("cache: %s cannot be read now: %w", dir, le)
		}
	}()
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if !m.Complete() {
		return nil, fmt.Errorf("cache: %s: %d of %d rows done: %w", dir, m.DoneRows(), m.N, ErrIncomplete)
	}
	if !littleEndian() {
		return nil, fmt.Errorf("cache: %s: memory-mapped caches need a little-endian machine", dir)
	}
	c := &Cache{Dir: dir, Manifest: m}
	for _, a := range m.Arrays() {
		if a.File == MapsFile && !withMaps {
			continue
		}
		b, err := c.mapArray(a)
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
		if check {
			if err := checkChunks(filepath.Join(dir, a.File), b, a, m); err != nil {
				return nil, errors.Join(err, c.Close())
			}
		}
		n := len(b) / a.DType.Size()
		if n == 0 {
			continue
		}
		switch a.File {
		case FeaturesFile:
			c.Features = unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
		case LabelsFile:
			c.Labels = unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n)
		case MapsFile:
			c.Maps = unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n)
		}
	}
	for i, l := range c.Labels {
		if int(l) != m.Items[i].Label {
			return nil, errors.Join(fmt.Errorf("%w: %s: row %d has label %d, the manifest says %d",
				ErrCorrupt, filepath.Join(dir, LabelsFile), i, l, m.Items[i].Label), c.Close())
		}
	}
	return c, nil
}

// mapArray checks the header of one array file against the manifest and
// maps the file, returning the data part.
func (c *Cache) mapArray(a ArraySpec) ([]byte, error) {
	p := filepath.Join(c.Dir, a.File)
	f, err := fsutil.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	off, err := checkArrayFile(f, p, a)
	if err != nil {
		return nil, err
	}
	size := off + a.RowBytes()*int64(a.Shape[0])
	if size == off {
		return nil, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("cache: %s: %d bytes do not fit in memory", p, size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cache: mmap %s: %w", p, err)
	}
	c.mapped = append(c.mapped, b)
	return b[off:], nil
}

// checkArrayFile reads the .npy header of f and checks dtype, order, shape
// and file size against a; it returns the data offset.
func checkArrayFile(f *os.File, p string, a ArraySpec) (int64, error) {
	h, err := readNpyHeader(io.NewSectionReader(f, 0, maxHeaderLen+16))
	if err != nil {
		// The manifest says this file is a finished array: a header that
		// does not read is damage too.
		return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, p, err)
	}
	if h.DType != a.DType || h.FortranOrder || !slices.Equal(h.Shape, a.Shape) {
		return 0, fmt.Errorf("%w: %s: array is %s %v (fortran order %v), the manifest wants %s %v",
			ErrCorrupt, p, h.DType, h.Shape, h.FortranOrder, a.DType, a.Shape)
	}
	if h.DataOffset%int64(a.DType.Size()) != 0 {
		return 0, fmt.Errorf("cache: %s: data offset %d is not aligned", p, h.DataOffset)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cache: %w", err)
	}
	want := h.DataOffset + a.RowBytes()*int64(a.Shape[0])
	if st.Size() != want {
		return 0, fmt.Errorf("%w: %s: %d bytes, want %d (truncated or overwritten)", ErrCorrupt, p, st.Size(), want)
	}
	return h.DataOffset, nil
}

// checkChunks compares the CRC-32C of each finished chunk of one mapped
// array (data, without the header) with the manifest's.
func checkChunks(p string, data []byte, a ArraySpec, m *Manifest) error {
	rb := a.RowBytes()
	for _, r := range m.Done {
		got := crc32.Checksum(data[int64(r.Start)*rb:int64(r.End)*rb], castagnoli)
		if err := checkSum(p, r, got, r.Checksums[a.File]); err != nil {
			return err
		}
	}
	return nil
}

// checkSum is the error for rows r of p whose checksum is got, not want.
func checkSum(p string, r Range, got uint32, want string) error {
	if s := fmt.Sprintf("%08x", got); s != want {
		return fmt.Errorf("%w: %s: rows [%d,%d) have checksum %s, the manifest says %s (the file was changed after extraction)",
			ErrCorrupt, p, r.Start, r.End, s, want)
	}
	return nil
}

// Close unmaps the arrays. It is idempotent and safe on a nil Cache.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, b := range c.mapped {
		if err := syscall.Munmap(b); err != nil {
			errs = append(errs, fmt.Errorf("cache: munmap %s: %w", c.Dir, err))
		}
	}
	c.mapped = nil
	c.Features, c.Labels, c.Maps = nil, nil, nil
	return errors.Join(errs...)
}

// Len is the number of rows N.
func (c *Cache) Len() int { return c.Manifest.N }

// Views is K, the views per row (1 for a cache of plain images).
func (c *Cache) Views() int { return c.Manifest.NumViews() }

// Feature returns row i of the features (a view into the map): its K
// views' features one after another.
func (c *Cache) Feature(i int) []float32 {
	d := c.Manifest.FeatureDim * c.Views()
	return c.Features[i*d : (i+1)*d : (i+1)*d]
}

// FeatureView returns view v of row i of the features.
func (c *Cache) FeatureView(i, v int) []float32 {
	d := c.Manifest.FeatureDim
	o := (i*c.Views() + v) * d
	return c.Features[o : o+d : o+d]
}

// MapLen is the number of float16 values of one map (C*h*w) of one view;
// 0 without maps.
func (c *Cache) MapLen() int {
	if c.Manifest.MapsShape == nil {
		return 0
	}
	s := c.Manifest.MapsShape
	return s[0] * s[1] * s[2]
}

// Map returns row i of the maps as float16 bits (a view into the map): its
// K views' maps one after another; convert with F16ToF32.
func (c *Cache) Map(i int) []uint16 {
	n := c.MapLen() * c.Views()
	return c.Maps[i*n : (i+1)*n : (i+1)*n]
}

// Verify recomputes every chunk's checksums from the files (Open checked
// the arrays it mapped when it opened them). A cancelled ctx stops it
// between chunks with ctx's error: a large maps.npy takes seconds.
func (c *Cache) Verify(ctx context.Context) error {
	return verifyDir(ctx, c.Dir, c.Manifest)
}

// Verify checks the finished chunks of the cache in dir, complete or not,
// against their checksums; a cancelled ctx stops it as (*Cache).Verify.
func Verify(ctx context.Context, dir string) error {
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	return verifyDir(ctx, dir, m)
}

// verifyDir checks the checksums of every finished chunk against the files
// in dir.
func verifyDir(ctx context.Context, dir string, m *Manifest) error {
	for _, a := range m.Arrays() {
		p := filepath.Join(dir, a.File)
		f, err := fsutil.Open(p)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		err = func() error {
			off, err := checkArrayFile(f, p, a)
			if err != nil {
				return err
			}
			buf := make([]byte, 1<<20)
			for _, r := range m.Done {
				if err := ctx.Err(); err != nil {
					return err
				}
				h := crc32.New(castagnoli)
				start := off + int64(r.Start)*a.RowBytes()
				n := int64(r.End-r.Start) * a.RowBytes()
				if _, err := io.CopyBuffer(h, io.NewSectionReader(f, start, n), buf); err != nil {
					return fmt.Errorf("cache: read %s: %w", p, err)
				}
				if err := checkSum(p, r, h.Sum32(), r.Checksums[a.File]); err != nil {
					return err
				}
			}
			return nil
		}()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
