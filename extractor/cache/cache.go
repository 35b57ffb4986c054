package cache

import (
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
	Features []float32 // N*FeatureDim, row-major
	Labels   []int32   // N
	Maps     []uint16  // IEEE float16 bits, N*C*h*w; nil without maps

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
// unfinished cache is an error wrapping ErrIncomplete.
func Open(dir string) (*Cache, error) {
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
		b, err := c.mapArray(a)
		if err != nil {
			return nil, errors.Join(err, c.Close())
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
		return 0, fmt.Errorf("cache: %s: %w", p, err)
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

// Feature returns row i of the features (a view into the map).
func (c *Cache) Feature(i int) []float32 {
	d := c.Manifest.FeatureDim
	return c.Features[i*d : (i+1)*d : (i+1)*d]
}

// MapLen is the number of float16 values of one map row (C*h*w); 0 without
// maps.
func (c *Cache) MapLen() int {
	if c.Manifest.MapsShape == nil {
		return 0
	}
	s := c.Manifest.MapsShape
	return s[0] * s[1] * s[2]
}

// Map returns row i of the maps as float16 bits (a view into the map);
// convert with F16ToF32.
func (c *Cache) Map(i int) []uint16 {
	n := c.MapLen()
	return c.Maps[i*n : (i+1)*n : (i+1)*n]
}

// Verify recomputes every chunk's checksums. It reads the whole cache, so
// Open does not call it; `tlearn cache info --verify` does.
func (c *Cache) Verify() error {
	return verifyDir(c.Dir, c.Manifest)
}

// Verify checks the finished chunks of the cache in dir, complete or not,
// against their checksums.
func Verify(dir string) error {
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	return verifyDir(dir, m)
}

// verifyDir checks the checksums of every finished chunk against the files
// in dir.
func verifyDir(dir string, m *Manifest) error {
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
				h := crc32.New(castagnoli)
				start := off + int64(r.Start)*a.RowBytes()
				n := int64(r.End-r.Start) * a.RowBytes()
				if _, err := io.CopyBuffer(h, io.NewSectionReader(f, start, n), buf); err != nil {
					return fmt.Errorf("cache: read %s: %w", p, err)
				}
				if got := fmt.Sprintf("%08x", h.Sum32()); got != r.Checksums[a.File] {
					return fmt.Errorf("%w: %s: rows [%d,%d) have checksum %s, the manifest says %s (the file was changed after extraction)",
						ErrCorrupt, p, r.Start, r.End, got, r.Checksums[a.File])
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
