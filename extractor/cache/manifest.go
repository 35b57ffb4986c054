package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// File names inside a cache folder (DESIGN.md, "Files on disk").
const (
	ManifestFile = "manifest.json"
	FeaturesFile = "features.npy"
	LabelsFile   = "labels.npy"
	MapsFile     = "maps.npy"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// ErrIncomplete is wrapped by Open's error for a cache whose extraction has
// not finished: the same extraction resumes it.
var ErrIncomplete = errors.New("cache: extraction not finished")

// ErrNotCache is wrapped by errors about folders without a manifest.
var ErrNotCache = errors.New("cache: not a cache folder (no " + ManifestFile + ")")

// ErrCorrupt is wrapped by errors about array files that disagree with
// their manifest (wrong header, size, labels or checksums): a cache
// changed or damaged after extraction, which only a new extraction mends.
var ErrCorrupt = errors.New("cache: corrupt")

// Manifest describes a cache: how its features were made, from which files,
// and which rows are finished.
type Manifest struct {
	Format      int    `json:"format"`
	Fingerprint string `json:"fingerprint"` // see Fingerprint

	Model         ModelRef        `json:"model"`
	Size          int             `json:"size"`          // square input side the images were resized to
	Interpolation string          `json:"interpolation"` // resize filter
	Preprocessing json.RawMessage `json:"preprocessing"` // the prepared model's preprocessing, as in its spec.json

	DataDir   string    `json:"data_dir"`        // absolute path of the dataset folder, or the URL of its bucket prefix as given; Item paths are relative to it
	Split     *SplitRef `json:"split,omitempty"` // set for the two parts that `extract --val` writes
	Classes   []string  `json:"classes"`
	N         int       `json:"n"`
	Items     []Item    `json:"items"`             // row i of every array is Items[i]
	Skipped   []Skipped `json:"skipped,omitempty"` // dataset files left out (--skip-bad), not counted in N
	ChunkSize int       `json:"chunk_size"`        // rows per chunk; chunk k is rows [k*ChunkSize, min((k+1)*ChunkSize, N))

	FeatureDim int   `json:"feature_dim"`
	MapsShape  []int `json:"maps_shape,omitempty"` // C, h, w; nil without maps

	// Views is K, the views stored per image, when above 1: the arrays
	// then have a second dimension K (features [N,K,D], maps [N,K,C,h,w]),
	// view 0 being the plain image and views 1..K-1 augmented as Augment
	// says. 0 (omitted) is a cache of plain images, laid out as before
	// views existed.
	Views   int         `json:"views,omitempty"`
	Augment *AugmentRef `json:"augment,omitempty"` // set exactly when Views > 1

	// Shard is set in the caches of a sharded extraction (extract
	// --shard), whose rows are a part of the listing's; such a cache may
	// hold no rows at all (a shard beyond the number of batches).
	Shard *ShardRef `json:"shard,omitempty"`

	Done    []Range   `json:"done"` // finished chunks, sorted
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// ModelRef names the prepared model a cache was made with.
type ModelRef struct {
	Dir             string `json:"dir"` // absolute path of the prepared model folder
	ExtractorSHA256 string `json:"extractor_sha256"`
	Preset          string `json:"preset"`
	// Quantization is the scheme of an int8 model (models quantize); ""
	// for float32.
	Quantization string `json:"quantization,omitempty"`
}

// SplitRef says which part of a seeded stratified split a cache holds.
type SplitRef struct {
	Part string  `json:"part"` // "train" or "val"
	Val  float64 `json:"val"`  // validation fraction
	Seed uint64  `json:"seed"`
}

// AugmentRef says how the augmented views of a cache were drawn.
type AugmentRef struct {
	Spec string `json:"spec"` // the canonical list, e.g. "flip,crop=0.5" (dataset.Augment.String)
	Seed uint64 `json:"seed"`
}

// MaxViews bounds Manifest.Views.
const MaxViews = 64

// NumViews is K: Views, or 1 for a cache of plain images.
func (m *Manifest) NumViews() int { return max(1, m.Views) }

// AugmentString describes the views in one phrase: "1 view (plain)" or
// "4 views (flip,crop=0.5, seed 1)".
func (m *Manifest) AugmentString() string {
	if m.Views <= 1 || m.Augment == nil {
		return "1 view (plain)"
	}
	return fmt.Sprintf("%d views (%s, seed %d)", m.Views, m.Augment.Spec, m.Augment.Seed)
}

// Item is one dataset file, the source of one row.
type Item struct {
	Path    string    `json:"path"` // relative to Manifest.DataDir, slash-separated
	Label   int       `json:"label"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
}

// Skipped is a dataset file left out of the cache, and why.
type Skipped struct {
	Item
	Reason string `json:"reason"`
}

// Range is a finished chunk, rows [Start, End), with the CRC-32C
// (Castagnoli) of each array's bytes for those rows, keyed by file name.
type Range struct {
	Start     int               `json:"start"`
	End       int               `json:"end"`
	Checksums map[string]string `json:"crc32c"`
}

// FingerprintInput is what decides the values in a cache: the same inputs on
// the same images give the same features.
type FingerprintInput struct {
	ExtractorSHA256 string
	Preset          string
	Size            int
	Interpolation   string
	Preprocessing   json.RawMessage
	// Views above 1 and the augmentation (AugmentRef's fields) decide the
	// views 1..K-1; a cache of plain images (Views 0 or 1) hashes neither,
	// so that its fingerprint is the one it had before views existed.
	Views       int
	AugmentSpec string
	AugmentSeed uint64
}

// Fingerprint is the hex sha256 over the backbone's sha256, the preset, the
// input size, the interpolation and the preprocessing, and for a cache with
// augmented views their number and augmentation. Two caches with equal
// fingerprints hold the same kind of rows (e.g. a train and a val cache);
// BaseFingerprint says whether features are comparable at all.
// The preprocessing JSON is compacted first, so that formatting does not
// change the fingerprint.
func Fingerprint(in FingerprintInput) string {
	h := sha256.New()
	field := func(s string) {
		// Length-prefixed so that no two different inputs hash the same bytes.
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	field("tlearn-cache-fingerprint-1")
	field(in.ExtractorSHA256)
	field(in.Preset)
	field(fmt.Sprint(in.Size))
	field(in.Interpolation)
	var pre bytes.Buffer
	if err := json.Compact(&pre, in.Preprocessing); err != nil {
		pre.Reset()
		pre.Write(in.Preprocessing)
	}
	field(pre.String())
	if in.Views > 1 {
		field("views")
		field(fmt.Sprint(in.Views))
		field(in.AugmentSpec)
		field(fmt.Sprint(in.AugmentSeed))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FingerprintInput is what the manifest records of the inputs of
// Fingerprint.
func (m *Manifest) FingerprintInput() FingerprintInput {
	in := FingerprintInput{
		ExtractorSHA256: m.Model.ExtractorSHA256, Preset: m.Model.Preset, Size: m.Size,
		Interpolation: m.Interpolation, Preprocessing: m.Preprocessing,
	}
	if m.Views > 1 && m.Augment != nil {
		in.Views, in.AugmentSpec, in.AugmentSeed = m.Views, m.Augment.Spec, m.Augment.Seed
	}
	return in
}

// BaseFingerprint is the fingerprint of the cache's plain images: the
// Fingerprint of a cache without views, the fingerprint that a cache of
// the same images made without views would have otherwise. Caches with
// equal base fingerprints hold comparable features (view 0 of one is the
// plain row of the other), whatever their views.
func (m *Manifest) BaseFingerprint() string {
	if m.Views <= 1 {
		return m.Fingerprint
	}
	in := m.FingerprintInput()
	in.Views, in.AugmentSpec, in.AugmentSeed = 0, "", 0
	return Fingerprint(in)
}

// NumChunks is the number of chunks of rows.
func (m *Manifest) NumChunks() int {
	if m.N == 0 || m.ChunkSize <= 0 {
		return 0
	}
	return (m.N + m.ChunkSize - 1) / m.ChunkSize
}

// Chunk returns chunk k's rows [start, end).
func (m *Manifest) Chunk(k int) (start, end int) {
	start = k * m.ChunkSize
	return start, min(start+m.ChunkSize, m.N)
}

// Complete reports whether every chunk is finished: a cache has rows, but
// for a shard that got none.
func (m *Manifest) Complete() bool {
	return m.DoneRows() == m.N && (m.N > 0 || m.Shard != nil)
}

// DoneRows counts the rows of finished chunks.
func (m *Manifest) DoneRows() int {
	n := 0
	for _, r := range m.Done {
		n += r.End - r.Start
	}
	return n
}

// Pending lists the chunks still to compute, in order.
func (m *Manifest) Pending() []Range {
	done := make(map[int]bool, len(m.Done))
	for _, r := range m.Done {
		done[r.Start] = true
	}
	var p []Range
	for k := range m.NumChunks() {
		s, e := m.Chunk(k)
		if !done[s] {
			p = append(p, Range{Start: s, End: e})
		}
	}
	return p
}

// Arrays lists the array files of the cache with their dtypes and shapes.
func (m *Manifest) Arrays() []ArraySpec {
	lead := []int{m.N}
	if m.Views > 1 {
		lead = append(lead, m.Views)
	}
	a := []ArraySpec{
		{FeaturesFile, Float32, append(slices.Clone(lead), m.FeatureDim)},
		{LabelsFile, Int32, []int{m.N}},
	}
	if m.MapsShape != nil {
		a = append(a, ArraySpec{MapsFile, Float16, append(slices.Clone(lead), m.MapsShape...)})
	}
	return a
}

// ArraySpec is one array file of a cache.
type ArraySpec struct {
	File  string
	DType DType
	Shape []int // first dimension is N
}

// RowBytes is the size of one row (all but the first dimension) in bytes.
func (a ArraySpec) RowBytes() int64 {
	n := int64(a.DType.Size())
	for _, d := range a.Shape[1:] {
		n *= int64(d)
	}
	return n
}

// ClassCounts counts the items of each class.
func (m *Manifest) ClassCounts() []int {
	c := make([]int, len(m.Classes))
	for _, it := range m.Items {
		if it.Label >= 0 && it.Label < len(c) {
			c[it.Label]++
		}
	}
	return c
}

// limits on what Validate accepts, to reject absurd manifests before any
// allocation sized by them.
const (
	maxFeatureDim = 1 << 24
	maxMapElems   = 1 << 30
)

// Validate checks the manifest's internal consistency. It is what
// ReadManifest runs on every manifest it reads, since manifests are outside
// bytes that a user may have edited.
func (m *Manifest) Validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("format %d, this tlearn reads %d", m.Format, FormatVersion)
	}
	if len(m.Fingerprint) != 64 {
		return errors.New("missing or malformed fingerprint")
	}
	if len(m.Classes) == 0 {
		return errors.New("no classes")
	}
	if m.N < 0 || (m.N == 0 && m.Shard == nil) || m.N != len(m.Items) {
		return fmt.Errorf("n = %d but %d items", m.N, len(m.Items))
	}
	if m.Shard != nil {
		if err := m.validateShard(); err != nil {
			return err
		}
	}
	if m.ChunkSize <= 0 {
		return fmt.Errorf("chunk size %d", m.ChunkSize)
	}
	if m.FeatureDim <= 0 || m.FeatureDim > maxFeatureDim {
		return fmt.Errorf("feature dim %d out of range", m.FeatureDim)
	}
	if m.MapsShape != nil {
		if len(m.MapsShape) != 3 {
			return fmt.Errorf("maps shape %v, want [C h w]", m.MapsShape)
		}
		e := 1
		for _, d := range m.MapsShape {
			if d <= 0 || d > maxMapElems || e*d > maxMapElems {
				return fmt.Errorf("maps shape %v out of range", m.MapsShape)
			}
			e *= d
		}
	}
	switch {
	case m.Views < 0 || m.Views == 1 || m.Views > MaxViews:
		return fmt.Errorf("views %d, want 2..%d (or none for plain images)", m.Views, MaxViews)
	case m.Views > 1 && (m.Augment == nil || m.Augment.Spec == ""):
		return fmt.Errorf("%d views without an augmentation", m.Views)
	case m.Views == 0 && m.Augment != nil:
		return errors.New("an augmentation without views")
	case m.Views > 1 && m.MapsShape != nil && m.Views*m.MapsShape[0]*m.MapsShape[1]*m.MapsShape[2] > maxMapElems:
		return fmt.Errorf("%d views of maps %v out of range", m.Views, m.MapsShape)
	}
	seen := make(map[string]bool, len(m.Items)+len(m.Skipped))
	check := func(it Item) error {
		if !validRelPath(it.Path) {
			return fmt.Errorf("item path %q is not a clean relative path", it.Path)
		}
		if seen[it.Path] {
			return fmt.Errorf("item %q listed twice", it.Path)
		}
		seen[it.Path] = true
		return nil
	}
	for _, it := range m.Items {
		if err := check(it); err != nil {
			return err
		}
		if it.Label < 0 || it.Label >= len(m.Classes) {
			return fmt.Errorf("item %q: label %d out of range", it.Path, it.Label)
		}
	}
	for _, it := range m.Skipped {
		if err := check(it.Item); err != nil {
			return err
		}
	}
	prev := -1
	for _, r := range m.Done {
		if r.Start <= prev || r.Start%m.ChunkSize != 0 || r.End != min(r.Start+m.ChunkSize, m.N) {
			return fmt.Errorf("finished range [%d,%d) is not a chunk in order", r.Start, r.End)
		}
		prev = r.Start
		for _, a := range m.Arrays() {
			if _, ok := r.Checksums[a.File]; !ok {
				return fmt.Errorf("finished range [%d,%d) has no checksum for %s", r.Start, r.End, a.File)
			}
		}
	}
	return nil
}

func validRelPath(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsRune(p, '\\') && !strings.ContainsRune(p, 0)
}

// maxManifestBytes bounds the manifest ReadManifest reads (about 2 million
// items).
const maxManifestBytes = 512 << 20

// ReadManifest reads and validates DIR/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("cache: %s is a file, not a cache folder", dir)
	}
	p := filepath.Join(dir, ManifestFile)
	f, err := fsutil.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotCache, dir)
		}
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if st.Size() > maxManifestBytes {
		return nil, fmt.Errorf("cache: %s: %d bytes is too large for a manifest", p, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("cache: read %s: %w", p, err)
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", p, err)
	}
	return m, nil
}

// parseManifest decodes and validates manifest bytes.
func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("malformed manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w", err)
	}
	return &m, nil
}

// writeManifest replaces DIR/manifest.json atomically.
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("cache: encode manifest: %w", err)
	}
	return fsutil.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}

// ItemDiff is how a dataset listing differs from a cache's.
type ItemDiff struct {
	Added, Removed, Changed []string // paths
}

// Empty reports whether the listings agree.
func (d ItemDiff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// String summarises the difference in one line, naming a few files.
func (d ItemDiff) String() string {
	var parts []string
	for _, x := range []struct {
		what  string
		paths []string
	}{{"added", d.Added}, {"removed", d.Removed}, {"changed (size, modification time or class)", d.Changed}} {
		if len(x.paths) == 0 {
			continue
		}
		names := x.paths[:min(3, len(x.paths))]
		s := fmt.Sprintf("%d %s (%s", len(x.paths), x.what, strings.Join(names, ", "))
		if len(x.paths) > len(names) {
			s += ", ..."
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, "; ")
}

// DiffItems compares the files a cache was made from (its Items and
// Skipped) with a current listing of the dataset. Labels count: a file moved
// to another class folder is changed.
func (m *Manifest) DiffItems(current []Item) ItemDiff {
	old := make(map[string]Item, len(m.Items)+len(m.Skipped))
	for _, it := range m.Items {
		old[it.Path] = it
	}
	for _, s := range m.Skipped {
		old[s.Path] = s.Item
	}
	var d ItemDiff
	for _, it := range current {
		o, ok := old[it.Path]
		switch {
		case !ok:
			d.Added = append(d.Added, it.Path)
		case o.Size != it.Size || !o.ModTime.Equal(it.ModTime) || o.Label != it.Label:
			d.Changed = append(d.Changed, it.Path)
		}
		delete(old, it.Path)
	}
	for p := range old {
		d.Removed = append(d.Removed, p)
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}
