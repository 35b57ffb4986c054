package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// ErrShards is wrapped by the errors about shards that cannot be merged:
// missing, unfinished, damaged or made differently.
var ErrShards = errors.New("cache: the shards cannot be merged")

// Shard is one shard cache of a merge: its folder and manifest.
type Shard struct {
	Dir      string
	Manifest *Manifest
}

// Merged is the manifest of the cache that the complete shards make
// together, in index order: the manifest that a single run over the same
// listing would have written, but for its times and its checksums (which
// Merge computes) and without a ShardRef. It refuses, wrapping ErrShards
// and naming the shards, a set that is not complete (missing indices,
// unfinished shards) or whose shards disagree on anything that decides
// their rows (model, preprocessing, input size and interpolation, views,
// classes, split, listing, batch) or whose ranges overlap or leave a gap.
func Merged(shards []Shard) (*Manifest, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: no shards", ErrShards)
	}
	first := shards[0]
	f := first.Manifest
	if f.Shard == nil {
		return nil, fmt.Errorf("%w: %s is not a shard (its manifest has no shard record)", ErrShards, first.Dir)
	}
	n := f.Shard.Count
	if len(shards) != n {
		return nil, fmt.Errorf("%w: %d shards of %d", ErrShards, len(shards), n)
	}
	m := *f
	m.Shard = nil
	m.N, m.Items, m.Skipped, m.Done = 0, nil, nil, nil
	next := 0
	for i, s := range shards {
		sm := s.Manifest
		if sm.Shard == nil {
			return nil, fmt.Errorf("%w: %s is not a shard (its manifest has no shard record)", ErrShards, s.Dir)
		}
		if sm.Shard.Index != i || sm.Shard.Count != n {
			return nil, fmt.Errorf("%w: %s says it is shard %d of %d, want %d of %d", ErrShards, s.Dir, sm.Shard.Index, sm.Shard.Count, i, n)
		}
		if !sm.Complete() {
			return nil, fmt.Errorf("%w: %s is unfinished: %d of %d rows done; the same shard extraction resumes it", ErrShards, s.Dir, sm.DoneRows(), sm.N)
		}
		if why := ShardDiff(f, sm); why != "" {
			return nil, fmt.Errorf("%w: %s and %s disagree: %s", ErrShards, first.Dir, s.Dir, why)
		}
		switch {
		case sm.Shard.Start > next:
			return nil, fmt.Errorf("%w: rows [%d,%d) are in no shard: %s starts at %d", ErrShards, next, sm.Shard.Start, s.Dir, sm.Shard.Start)
		case sm.Shard.Start < next:
			return nil, fmt.Errorf("%w: %s (rows [%d,%d)) overlaps the shard before it, which ends at %d", ErrShards, s.Dir, sm.Shard.Start, sm.Shard.End, next)
		}
		next = sm.Shard.End
		m.Items = append(m.Items, sm.Items...)
		m.Skipped = append(m.Skipped, sm.Skipped...)
		if sm.Created.Before(m.Created) {
			m.Created = sm.Created
		}
	}
	if next != f.Shard.Total {
		return nil, fmt.Errorf("%w: rows [%d,%d) are in no shard: %s ends at %d", ErrShards, next, f.Shard.Total, shards[n-1].Dir, next)
	}
	m.N = len(m.Items)
	if m.N == 0 {
		return nil, fmt.Errorf("%w: the shards in %s hold no rows", ErrShards, filepath.Dir(first.Dir))
	}
	m.ChunkSize = ChunkSize(m.N, f.Shard.Batch)
	return &m, nil
}

// ShardDiff says how shard b was made differently from shard a (both with
// a ShardRef), or "" when they can be merged.
func ShardDiff(a, b *Manifest) string {
	var why []string
	add := func(what string, x, y any) {
		why = append(why, fmt.Sprintf("%s %v vs %v", what, x, y))
	}
	if a.Model.ExtractorSHA256 != b.Model.ExtractorSHA256 {
		add("model (extractor.onnx sha256)", a.Model.ExtractorSHA256, b.Model.ExtractorSHA256)
	}
	if a.Model.Preset != b.Model.Preset {
		add("preset", a.Model.Preset, b.Model.Preset)
	}
	if a.Size != b.Size {
		add("size", a.Size, b.Size)
	}
	if a.Interpolation != b.Interpolation {
		add("interpolation", a.Interpolation, b.Interpolation)
	}
	if a.AugmentString() != b.AugmentString() {
		add("views", a.AugmentString(), b.AugmentString())
	}
	if len(why) == 0 && a.Fingerprint != b.Fingerprint {
		why = append(why, "preprocessing (fingerprint "+a.Fingerprint[:12]+"… vs "+b.Fingerprint[:12]+"…)")
	}
	if !slices.Equal(a.Classes, b.Classes) {
		add("classes", a.Classes, b.Classes)
	}
	if a.FeatureDim != b.FeatureDim {
		add("features", a.FeatureDim, b.FeatureDim)
	}
	if !slices.Equal(a.MapsShape, b.MapsShape) {
		add("maps", a.MapsShape, b.MapsShape)
	}
	if (a.Split == nil) != (b.Split == nil) || (a.Split != nil && *a.Split != *b.Split) {
		add("split", a.Split, b.Split)
	}
	sa, sb := a.Shard, b.Shard
	if sa.Listing != sb.Listing {
		add("listing (sha256)", sa.Listing, sb.Listing)
	}
	if sa.Total != sb.Total {
		add("rows in all", sa.Total, sb.Total)
	}
	if sa.Batch != sb.Batch {
		add("batch", sa.Batch, sb.Batch)
	}
	return strings.Join(why, ", ")
}

// RanDiff names what differs in where the shards ran (ONNX Runtime
// version, execution provider, CPU features), "" when nothing does: their
// features may then differ in the last bits.
func RanDiff(shards []Shard) string {
	var why []string
	for _, f := range []struct {
		what string
		of   func(RanOn) string
	}{
		{"ONNX Runtime", func(r RanOn) string { return r.ORT }},
		{"provider", func(r RanOn) string { return r.Provider }},
		{"CPU features", func(r RanOn) string { return strings.Join(r.CPUFeatures, ",") }},
	} {
		seen := map[string][]int{}
		var order []string
		for _, s := range shards {
			if s.Manifest.Shard == nil {
				continue
			}
			v := f.of(s.Manifest.Shard.Ran)
			if _, ok := seen[v]; !ok {
				order = append(order, v)
			}
			seen[v] = append(seen[v], s.Manifest.Shard.Index)
		}
		if len(order) < 2 {
			continue
		}
		var parts []string
		for _, v := range order {
			if v == "" {
				v = "none"
			}
			parts = append(parts, fmt.Sprintf("%s (shards %s)", v, indexList(seen[v])))
		}
		why = append(why, f.what+" "+strings.Join(parts, " vs "))
	}
	return strings.Join(why, "; ")
}

// indexList writes indices as Slurm's --array does: 0,3,7.
func indexList(idx []int) string {
	s := make([]string, len(idx))
	for i, v := range idx {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// mergeStep is the bytes copied between cancellation checks.
const mergeStep = 16 << 20

// Merge writes the cache m (from Merged) into dir from the shards: each
// array is the shards' rows one after another, each shard's chunks checked
// against their checksums on the way (a damaged shard stops it with
// ErrCorrupt, naming the file and rows), and m's own chunks' checksums
// computed from the same bytes. An old manifest in dir is removed first
// and the new one written last, after the arrays are synced and renamed
// into place: a merge killed at any moment leaves no manifest that
// describes other arrays, and the same merge redoes it. Dir must hold
// nothing but a cache, a plan and the shards (CheckDir).
func Merge(ctx context.Context, dir string, m *Manifest, shards []Shard) error {
	m.Format = FormatVersion
	m.Done = nil
	if err := m.Validate(); err != nil {
		return fmt.Errorf("cache: merge into %s: %w", dir, err)
	}
	if err := prepareDir(dir, true); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err == nil {
		if err := fsutil.SyncDir(dir); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache: %w", err)
	}
	if m.MapsShape == nil {
		if err := os.Remove(filepath.Join(dir, MapsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cache: %w", err)
		}
	}
	chunks := m.NumChunks()
	done := make([]Range, chunks)
	for k := range done {
		s, e := m.Chunk(k)
		done[k] = Range{Start: s, End: e, Checksums: map[string]string{}}
	}
	for _, a := range m.Arrays() {
		sums, err := mergeArray(ctx, filepath.Join(dir, a.File), a, m, shards)
		if err != nil {
			return err
		}
		for k, c := range sums {
			done[k].Checksums[a.File] = fmt.Sprintf("%08x", c)
		}
	}
	m.Done = done
	m.Updated = time.Now().UTC()
	if err := writeManifest(dir, m); err != nil {
		return fmt.Errorf("cache: %s: %w", dir, err)
	}
	return nil
}

// mergeArray writes the array a of m at p from the shards' files and
// returns the CRC-32C of each of m's chunks.
func mergeArray(ctx context.Context, p string, a ArraySpec, m *Manifest, shards []Shard) ([]uint32, error) {
	f, err := fsutil.Create(p, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer f.Abort()
	hdr := encodeNpyHeader(a.DType, a.Shape)
	rb := a.RowBytes()
	size := int64(len(hdr)) + rb*int64(a.Shape[0])
	if err := preallocate(f.File, size); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("cache: %s: the disk has no room for %s of %s: %w", filepath.Dir(p), fsutil.FormatBytes(size), filepath.Base(p), err)
		}
		return nil, fmt.Errorf("cache: preallocate %s (%s): %w", p, fsutil.FormatBytes(size), err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("cache: write %s: %w", p, err)
	}
	out := &chunkSums{chunk: int64(m.ChunkSize) * rb, sums: make([]uint32, m.NumChunks())}
	pos := int64(len(hdr))
	for _, s := range shards {
		if s.Manifest.N == 0 {
			continue
		}
		n, err := copyShard(ctx, f.File, pos, s, a, out)
		if err != nil {
			return nil, err
		}
		pos += n
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return out.sums, nil
}

// chunkSums computes the CRC-32C of each chunk of bytes written in order.
type chunkSums struct {
	chunk int64 // bytes per chunk
	off   int64 // bytes seen
	sums  []uint32
}

func (c *chunkSums) write(b []byte) {
	for len(b) > 0 {
		k := c.off / c.chunk
		n := min(int64(len(b)), (k+1)*c.chunk-c.off)
		c.sums[k] = crc32.Update(c.sums[k], castagnoli, b[:n])
		c.off += n
		b = b[n:]
	}
}

// copyShard writes the rows of shard s's array a to dst at pos, checking
// each of the shard's chunks against its checksum before it is written,
// and returns the bytes written. The shard's file is memory-mapped, so its
// bytes are read once, by the checksums, and copied once, by the write.
func copyShard(ctx context.Context, dst *os.File, pos int64, s Shard, a ArraySpec, out *chunkSums) (int64, error) {
	sa := a
	sa.Shape = append([]int{s.Manifest.N}, a.Shape[1:]...)
	c := &Cache{Dir: s.Dir, Manifest: s.Manifest}
	data, err := c.mapArray(sa)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if len(c.mapped) > 0 {
		madvise(c.mapped[0])
	}
	p := filepath.Join(s.Dir, a.File)
	rb := a.RowBytes()
	var n int64
	for _, r := range s.Manifest.Done {
		b := data[int64(r.Start)*rb : int64(r.End)*rb]
		if err := checkSum(p, r, crc32.Checksum(b, castagnoli), r.Checksums[a.File]); err != nil {
			return 0, err
		}
		for len(b) > 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			step := b[:min(len(b), mergeStep)]
			if _, err := dst.WriteAt(step, pos+n); err != nil {
				return 0, fmt.Errorf("cache: write %s: %w", filepath.Base(p), err)
			}
			out.write(step)
			n += int64(len(step))
			b = b[len(step):]
		}
	}
	return n, nil
}
