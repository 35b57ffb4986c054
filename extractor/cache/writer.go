package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// Writer fills the arrays of a cache in place, one chunk at a time. Only the
// extractor writes caches; one Writer per folder at a time.
type Writer struct {
	dir    string
	m      *Manifest
	arrays []ArraySpec
	files  []*os.File
	offs   []int64 // data offset of each array file

	// The chunk in progress: rows [chunkStart, chunkEnd), next is the next
	// row to write, or -1 when no chunk is open.
	chunkStart, chunkEnd, next int
	crcs                       []hash.Hash32
	buf                        []byte
	now                        func() time.Time
}

// Create makes a new cache in dir for m (whose Done list is ignored) and
// returns a Writer for it. dir is created if missing; a cache already there
// is replaced. The arrays are preallocated with their final size, so that a
// disk that is too small is reported now.
//
// The old manifest is removed first and the new one written last, so a
// crash in between leaves a folder that is no cache rather than a manifest
// that describes other arrays. Old array files are unlinked, not
// overwritten: a reader that has them mapped keeps valid memory, and their
// space is free for the new ones.
func Create(dir string, m *Manifest) (*Writer, error) {
	m.Format = FormatVersion
	m.Done = nil
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", dir, err)
	}
	if err := prepareDir(dir, true); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err == nil {
		if err := fsutil.SyncDir(dir); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, name := range []string{FeaturesFile, LabelsFile, MapsFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	for _, a := range m.Arrays() {
		if err := createArray(filepath.Join(dir, a.File), a); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	m.Created, m.Updated = now, now
	if err := writeManifest(dir, m); err != nil {
		return nil, fmt.Errorf("cache: %s: %w", dir, err)
	}
	return openWriter(dir, m, false)
}

// CheckDir reports whether dir can hold a new cache without touching it:
// it may be missing, empty, or hold a cache; a file or a folder with other
// content is refused, so that a mistyped --cache cannot clobber other data.
func CheckDir(dir string) error {
	return prepareDir(dir, false)
}

// prepareDir is CheckDir, and with create also makes dir and removes the
// temporaries of interrupted atomic writes.
func prepareDir(dir string, create bool) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !create {
			return nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("cache: %w", err)
	case !st.IsDir():
		return fmt.Errorf("cache: %s is a file, not a folder; choose another cache folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, e := range entries {
		switch n := e.Name(); {
		case n == ManifestFile || n == FeaturesFile || n == LabelsFile || n == MapsFile:
		case n == PlanFile || n == ShardsDir:
			// A sharded extraction's listing and shards: the merge
			// writes the cache beside them.
		case strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-"):
			if create {
				os.Remove(filepath.Join(dir, n))
			}
		default:
			return fmt.Errorf("cache: %s is not empty and holds no cache (found %s); choose an empty or new cache folder", dir, n)
		}
	}
	return nil
}

func createArray(p string, a ArraySpec) error {
	f, err := fsutil.Create(p, 0o644)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer f.Abort()
	hdr := encodeNpyHeader(a.DType, a.Shape)
	size := int64(len(hdr)) + a.RowBytes()*int64(a.Shape[0])
	if err := preallocate(f.File, size); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("cache: %s: the disk has no room for %s of %s: %w", filepath.Dir(p), fsutil.FormatBytes(size), filepath.Base(p), err)
		}
		return fmt.Errorf("cache: preallocate %s (%s): %w", p, fsutil.FormatBytes(size), err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("cache: write %s: %w", p, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Resume reopens the unfinished cache in dir for writing. It checks every
// finished chunk against its checksums first, so that a resumed cache never
// builds on damaged rows, and brings the arrays' first dimension back to
// the manifest's N if a run was killed while dropping a row (see Drop).
// A cancelled ctx stops that check with ctx's error.
func Resume(ctx context.Context, dir string) (*Writer, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	w, err := openWriter(dir, m, true)
	if err != nil {
		return nil, err
	}
	if err := verifyDir(ctx, dir, m); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	return w, nil
}

func openWriter(dir string, m *Manifest, repair bool) (*Writer, error) {
	w := &Writer{dir: dir, m: m, arrays: m.Arrays(), next: -1, now: time.Now}
	for _, a := range w.arrays {
		p := filepath.Join(dir, a.File)
		f, err := fsutil.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cache: %w", err), w.Close())
		}
		w.files = append(w.files, f)
		if repair {
			if err := resizeArray(f, p, a); err != nil {
				return nil, errors.Join(err, w.Close())
			}
		}
		off, err := checkArrayFile(f, p, a)
		if err != nil {
			return nil, errors.Join(err, w.Close())
		}
		w.offs = append(w.offs, off)
		w.crcs = append(w.crcs, crc32.New(castagnoli))
	}
	return w, nil
}

// resizeArray rewrites the header of an array file whose first dimension
// differs from a's, keeping the data offset, and truncates or extends the
// file to match. Rows below the new N keep their bytes; a file that already
// matches is left alone.
func resizeArray(f *os.File, p string, a ArraySpec) error {
	h, err := readNpyHeader(io.NewSectionReader(f, 0, maxHeaderLen+16))
	if err != nil {
		return fmt.Errorf("cache: %s: %w", p, err)
	}
	if len(h.Shape) != len(a.Shape) || len(h.Shape) == 0 || h.DType != a.DType || !slices.Equal(h.Shape[1:], a.Shape[1:]) {
		return fmt.Errorf("%w: %s: array is %s %v, the manifest wants %s %v", ErrCorrupt, p, h.DType, h.Shape, a.DType, a.Shape)
	}
	if h.Shape[0] == a.Shape[0] {
		return nil
	}
	hdr, ok := encodeHeader(a.DType, a.Shape, int(h.DataOffset))
	if !ok {
		return fmt.Errorf("cache: %s: the header for shape %v does not fit before the data", p, a.Shape)
	}
	size := h.DataOffset + a.RowBytes()*int64(a.Shape[0])
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if size < st.Size() {
		err = f.Truncate(size)
	} else {
		err = preallocate(f, size)
	}
	if err != nil {
		return fmt.Errorf("cache: resize %s: %w", p, err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("cache: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cache: sync %s: %w", p, err)
	}
	return nil
}

// Drop removes row i from the cache, for an image found bad only while its
// chunk was being computed: the item moves to the manifest's Skipped list
// with reason, N shrinks by one and the rows after i move up. Row i must not
// be in a finished chunk; finished chunks after it (there are none when
// chunks are computed in order) are forgotten, since their rows shift. The
// chunk in progress is abandoned: write it again from its start. Every
// array keeps its data offset, so finished rows stay where they are.
//
// The manifest is written first; a run killed before the arrays are resized
// is repaired by Resume.
func (w *Writer) Drop(i int, reason string) error {
	if i < 0 || i >= w.m.N {
		return fmt.Errorf("cache: %s: drop row %d of %d", w.dir, i, w.m.N)
	}
	chunkStart := i / w.m.ChunkSize * w.m.ChunkSize
	for _, r := range w.m.Done {
		if r.Start == chunkStart {
			return fmt.Errorf("cache: %s: row %d (%s) is in a finished chunk", w.dir, i, w.m.Items[i].Path)
		}
	}
	if w.m.N == 1 {
		return fmt.Errorf("cache: %s: dropping %s would leave no rows", w.dir, w.m.Items[i].Path)
	}
	m := *w.m
	m.Items = slices.Delete(slices.Clone(w.m.Items), i, i+1)
	m.Skipped = append(slices.Clone(w.m.Skipped), Skipped{Item: w.m.Items[i], Reason: reason})
	m.N--
	m.Done = nil
	for _, r := range w.m.Done {
		if r.End <= chunkStart {
			m.Done = append(m.Done, r)
		}
	}
	m.Updated = w.now().UTC()
	if err := writeManifest(w.dir, &m); err != nil {
		return fmt.Errorf("cache: %s: %w", w.dir, err)
	}
	w.m = &m
	w.next = -1
	w.arrays = m.Arrays()
	for k, a := range w.arrays {
		if err := resizeArray(w.files[k], filepath.Join(w.dir, a.File), a); err != nil {
			return err
		}
	}
	return nil
}

// Manifest is the cache's manifest as last written. Callers must not change
// it.
func (w *Writer) Manifest() *Manifest { return w.m }

// Dir is the cache folder.
func (w *Writer) Dir() string { return w.dir }

// Write stores rows [start, start+len(labels)) of every array: features has
// len(labels)*K*FeatureDim values, maps len(labels)*K*C*h*w (nil when the
// cache has no maps; they are converted to float16 here), K being the
// views per row (1 without views). Rows of a chunk must be
// written in order; a start that is the first row of a pending chunk opens
// that chunk (dropping any unfinished one). When the chunk's last row is
// written, the array files are synced and the manifest records the chunk.
// It panics when the slice lengths do not match (a programming error).
func (w *Writer) Write(start int, features []float32, labels []int32, maps []float32) error {
	n := len(labels)
	k := w.m.NumViews()
	if len(features) != n*k*w.m.FeatureDim {
		panic(fmt.Sprintf("cache: Write: %d features for %d rows of %d×%d", len(features), n, k, w.m.FeatureDim))
	}
	mapLen := 0
	if w.m.MapsShape != nil {
		mapLen = k * w.m.MapsShape[0] * w.m.MapsShape[1] * w.m.MapsShape[2]
	}
	if len(maps) != n*mapLen {
		panic(fmt.Sprintf("cache: Write: %d map values for %d rows of %d", len(maps), n, mapLen))
	}
	// next is -1 between chunks: a negative start must not pass as "next".
	if start != w.next || start < 0 {
		if start < 0 || start >= w.m.N || start%w.m.ChunkSize != 0 {
			return fmt.Errorf("cache: %s: write at row %d: not the start of a chunk", w.dir, start)
		}
		w.chunkStart, w.chunkEnd = w.m.Chunk(start / w.m.ChunkSize)
		w.next = start
		for _, h := range w.crcs {
			h.Reset()
		}
	}
	if start+n > w.chunkEnd {
		return fmt.Errorf("cache: %s: write of rows [%d,%d) crosses the chunk end %d", w.dir, start, start+n, w.chunkEnd)
	}
	for i, a := range w.arrays {
		b := w.buf[:0]
		switch a.File {
		case FeaturesFile:
			for _, v := range features {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		case LabelsFile:
			for _, v := range labels {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			}
		case MapsFile:
			for _, v := range maps {
				b = binary.LittleEndian.AppendUint16(b, f32ToF16(v))
			}
		}
		w.buf = b
		if _, err := w.files[i].WriteAt(b, w.offs[i]+int64(start)*a.RowBytes()); err != nil {
			w.next = -1
			// err (an *os.PathError) already names the file.
			return fmt.Errorf("cache: %w (finished chunks stay valid; re-run to resume)", err)
		}
		w.crcs[i].Write(b)
	}
	w.next = start + n
	if w.next == w.chunkEnd {
		return w.finishChunk()
	}
	return nil
}

// finishChunk makes the chunk durable, then records it in the manifest: the
// order that guarantees a listed chunk is on disk.
func (w *Writer) finishChunk() error {
	w.next = -1
	r := Range{Start: w.chunkStart, End: w.chunkEnd, Checksums: map[string]string{}}
	for i, a := range w.arrays {
		if err := w.files[i].Sync(); err != nil {
			return fmt.Errorf("cache: sync %s: %w (finished chunks stay valid; re-run to resume)", filepath.Join(w.dir, a.File), err)
		}
		r.Checksums[a.File] = fmt.Sprintf("%08x", w.crcs[i].Sum32())
	}
	m := *w.m
	m.Done = slices.Clone(w.m.Done)
	i, found := slices.BinarySearchFunc(m.Done, r.Start, func(x Range, s int) int { return x.Start - s })
	if found {
		m.Done[i] = r
	} else {
		m.Done = slices.Insert(m.Done, i, r)
	}
	m.Updated = w.now().UTC()
	if err := writeManifest(w.dir, &m); err != nil {
		return fmt.Errorf("cache: %s: %w (finished chunks stay valid; re-run to resume)", w.dir, err)
	}
	w.m = &m
	return nil
}

// Close closes the array files. Rows of an unfinished chunk are not
// recorded and will be recomputed on resume. It is idempotent and safe on a
// nil Writer.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	var errs []error
	for _, f := range w.files {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
	}
	w.files = nil
	return errors.Join(errs...)
}

// DiskSize is the total size of the cache's files; a preallocated cache has
// its final size from the start.
func DiskSize(dir string) (int64, error) {
	var total int64
	for _, n := range []string{ManifestFile, FeaturesFile, LabelsFile, MapsFile} {
		st, err := os.Stat(filepath.Join(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cache: %w", err)
		}
		total += st.Size()
	}
	return total, nil
}
