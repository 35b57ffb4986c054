package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// Merge writes the cache m (from Merged) into dir from the shards: each
// array is the shards' rows one after another, each shard's chunks checked
// against their checksums on the way (a damaged shard stops it with
// ErrCorrupt, naming the file and rows), and m's own chunks' checksums
// computed from the same bytes (each byte is read once: the pieces'
// CRC-32C are combined into both). An old manifest in dir is removed first
// and the new one (its items encoded and written to a temporary file
// during the copy) completed, synced and renamed into place last, after
// the arrays are synced and renamed: a merge killed at any moment leaves no manifest that
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
	// The manifest's bulk (its items) is encoded and written while the
	// arrays are copied; what depends on them (the chunks' checksums and
	// the time) is appended once they are in place.
	mw := startManifest(dir, *m)
	defer mw.abort()
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
	if err := mw.commit(m); err != nil {
		return fmt.Errorf("cache: %s: %w", dir, err)
	}
	return nil
}

// mergePiece is the most bytes that merge checksums and then writes in one
// step: few enough to be still in the CPU's cache when the write copies
// them, enough that a write costs its copy rather than its call.
var mergePiece int64 = 1 << 20 // a variable for the tests of pieces that split rows

// mergeArray writes the array a of m at p from the shards' files and
// returns the CRC-32C of each of m's chunks. (Reading and checking on one
// goroutine while another wrote the pieces checked before made no
// difference on ext4 and cost more CPU on a tmpfs, where the piece is no
// longer in the writing core's cache: BenchmarkMerge.)
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
		n, err := copyShard(ctx, f.File, p, pos, s, a, out)
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

// chunkSums computes the CRC-32C of each chunk of bytes written in order
// from the CRC-32C of its pieces.
type chunkSums struct {
	chunk int64 // bytes per chunk
	off   int64 // bytes seen
	sums  []uint32
}

// room is the bytes left in the current chunk: a piece may not cross its end.
func (c *chunkSums) room() int64 { return (c.off/c.chunk+1)*c.chunk - c.off }

// add counts the next n bytes, whose CRC-32C is sum.
func (c *chunkSums) add(sum uint32, n int64) {
	k := c.off / c.chunk
	c.sums[k] = crc32cCombine(c.sums[k], sum, n)
	c.off += n
}

// copyShard writes the rows of shard s's array a to dst (named name) at
// pos in pieces, checking each of the shard's chunks against its checksum,
// and returns the bytes written. The shard's file is memory-mapped and
// every byte read once, by the CRC-32C of its piece, which is combined
// into the shard chunk's sum and the merged chunk's (out); the write then
// copies it while it is still in the cache.
func copyShard(ctx context.Context, dst *os.File, name string, pos int64, s Shard, a ArraySpec, out *chunkSums) (int64, error) {
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
		var sum uint32
		for len(b) > 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			k := min(int64(len(b)), mergePiece, out.room())
			ps := crc32.Checksum(b[:k], castagnoli)
			sum = crc32cCombine(sum, ps, k)
			out.add(ps, k)
			if _, err := dst.WriteAt(b[:k], pos+n); err != nil {
				return 0, fmt.Errorf("cache: write %s: %w", name, err)
			}
			n += k
			b = b[k:]
		}
		// The chunk is written already: a damaged one stops the merge
		// before the file is renamed into place.
		if err := checkSum(p, r, sum, r.Checksums[a.File]); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// manifestWrite is a manifest being written while the arrays are copied:
// its head (everything before the chunks' checksums) goes to the
// temporary file at once, the rest at commit.
type manifestWrite struct {
	done chan struct{} // closed when the head is written (or failed)
	f    *fsutil.File
	err  error
}

// startManifest encodes m's head and writes it to a temporary manifest in
// dir on a goroutine of its own.
func startManifest(dir string, m Manifest) *manifestWrite {
	w := &manifestWrite{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		head, err := manifestHead(&m)
		if err != nil {
			w.err = err
			return
		}
		p := filepath.Join(dir, ManifestFile)
		f, err := fsutil.Create(p, 0o644)
		if err != nil {
			w.err = err
			return
		}
		if _, err := f.Write(head); err != nil {
			f.Abort()
			w.err = fmt.Errorf("write %s: %w", p, err)
			return
		}
		w.f = f
	}()
	return w
}

// commit appends the rest of m (its Done and times) to the head and
// renames the manifest into place: the bytes are writeManifest's.
func (w *manifestWrite) commit(m *Manifest) error {
	<-w.done
	if w.err != nil {
		return w.err
	}
	tail, err := manifestTailJSON(m)
	if err != nil {
		return err
	}
	if _, err := w.f.Write(tail); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(filepath.Dir(w.f.Name()), ManifestFile), err)
	}
	return w.f.Commit()
}

// abort waits for the head and removes the temporary (nothing after commit).
func (w *manifestWrite) abort() {
	<-w.done
	if w.f != nil {
		w.f.Abort()
	}
}

// manifestTail is the last fields of Manifest, in its order: those that
// merge knows only once the arrays are written (TestManifestTailFields
// checks that they are the last).
type manifestTail struct {
	Done    []Range   `json:"done"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// manifestDoneKey is where the tail starts in writeManifest's encoding (at
// the top level, with its indent of one space: strings hold no raw newline).
var manifestDoneKey = []byte("\n \"done\": ")

// manifestHead is writeManifest's encoding of m up to the tail, which
// manifestTailJSON completes. Its items, the bulk of it, are encoded by
// appendItems (encoding/json spends most of merge's CPU time on them).
func manifestHead(m *Manifest) ([]byte, error) {
	h := *m
	h.Done = nil
	fast := len(h.Items) > 0
	if fast {
		h.Items = nil
	}
	b, err := json.MarshalIndent(&h, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	i := bytes.LastIndex(b, manifestDoneKey)
	if i < 0 {
		return nil, fmt.Errorf("encode manifest: no %q in it", manifestDoneKey[1:])
	}
	b = b[:i+1]
	if !fast {
		return b, nil
	}
	j := bytes.Index(b, manifestItemsNull)
	if j < 0 {
		return nil, fmt.Errorf("encode manifest: no %q in it", manifestItemsNull[1:])
	}
	j += len(manifestItemsNull) - len(",\n") - len("null")
	out := make([]byte, 0, len(b)+len(m.Items)*(120+len(m.Items[0].Path)))
	out = append(out, b[:j]...)
	if out, err = appendItems(out, m.Items); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(out, b[j+len("null"):]...), nil
}

// manifestItemsNull is where the items go in the encoding of a manifest
// without them.
var manifestItemsNull = []byte("\n \"items\": null,\n")

// appendItems appends items as json.MarshalIndent(m, "", " ") writes
// m.Items (an array at the top level of the manifest, so its objects are
// indented by two spaces), byte for byte; TestManifestHeadTail compares
// them on paths that need escaping.
func appendItems(b []byte, items []Item) ([]byte, error) {
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  {\n   \"path\": "...)
		b = appendJSONString(b, it.Path)
		b = append(b, ",\n   \"label\": "...)
		b = strconv.AppendInt(b, int64(it.Label), 10)
		b = append(b, ",\n   \"size\": "...)
		b = strconv.AppendInt(b, it.Size, 10)
		b = append(b, ",\n   \"mtime\": "...)
		t, err := it.ModTime.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Path, err)
		}
		b = append(b, t...)
		b = append(b, "\n  }"...)
	}
	return append(b, "\n ]"...), nil
}

// appendJSONString appends s quoted as encoding/json quotes it: printable
// ASCII but for the characters that it escapes ("\\<>&) as is, anything
// else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// manifestTailJSON is the rest of writeManifest's encoding of m after
// manifestHead.
func manifestTailJSON(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(manifestTail{Done: m.Done, Created: m.Created, Updated: m.Updated}, "", " ")
	if err != nil || !bytes.HasPrefix(b, []byte("{\n ")) {
		return nil, fmt.Errorf("encode manifest: %v", err)
	}
	return append(b[2:], '\n'), nil
}
