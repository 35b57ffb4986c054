package extractor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
)

// Settings choose what Extract stores and how it treats an existing cache
// and bad images. The zero value means: nearest-neighbour resizing, the
// loader's default decode workers, resume a matching cache, stop at the
// first bad image.
type Settings struct {
	// Interpolation is the resize filter; "" means dataset.Nearest (Keras'
	// load_img default).
	Interpolation dataset.Interpolation
	// Workers decode and resize in parallel with inference; 0 means
	// dataset.DefaultWorkers.
	Workers int
	// Force rebuilds the cache even when one made with other settings or
	// from other files is there (never a non-cache folder or a file).
	Force bool
	// SkipBad leaves images that cannot be decoded out of the cache (listed
	// in the manifest and in Result.Skipped) instead of failing.
	SkipBad bool
	// Split records which part of a validation split this cache is; a
	// cache of another split is not reused.
	Split *cache.SplitRef
	// Views is K, the views of each image the cache stores (0 means 1):
	// view 0 is the plain image, views 1..K-1 are drawn by Augment with
	// AugmentSeed (dataset.Augment.Draw), so each is a function of the seed,
	// the image's path and the view number alone. More than one view needs
	// an Augment; one view stores exactly the cache made without views.
	Views       int
	Augment     dataset.Augment
	AugmentSeed uint64
	// Shard, when set, makes the cache a shard of a sharded extraction:
	// the caller gives its index, count, rows, batch, listing hash and
	// tlearn version; Extract records where it runs (ONNX Runtime,
	// provider, CPU features, host) and accepts an empty range.
	Shard *cache.ShardRef
}

// ErrViews is wrapped by the errors about invalid Settings.Views and
// Settings.Augment.
var ErrViews = errors.New("extractor: invalid views")

// checkViews validates and normalises the views settings: one view means
// no augmentation.
func (s *Settings) checkViews() error {
	if s.Views == 0 {
		s.Views = 1
	}
	switch {
	case s.Views < 1 || s.Views > dataset.MaxViews:
		return fmt.Errorf("%w: %d views per image, want 1..%d", ErrViews, s.Views, dataset.MaxViews)
	case s.Views > 1 && s.Augment.IsZero():
		return fmt.Errorf("%w: %d views per image need an augmentation (views 1..%d would repeat the plain image)", ErrViews, s.Views, s.Views-1)
	case s.Views == 1 && !s.Augment.IsZero():
		return fmt.Errorf("%w: augmentation %s with one view per image, which is the plain image; ask for more views", ErrViews, s.Augment)
	}
	if err := s.Augment.Validate(); err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	return nil
}

// Result summarises one Extract call.
type Result struct {
	Dir         string
	Fingerprint string
	N           int             // rows in the cache
	Computed    int             // images run through the model by this call (each view counts)
	Reused      int             // rows (images) already finished before this call
	Skipped     []cache.Skipped // images left out of the cache (this call or an earlier one)
	UpToDate    bool            // the cache was complete: nothing to do
	Elapsed     time.Duration
	// Inference is the part of Elapsed spent in ORT runs; the rest is the
	// check pass, waiting for decoding, and writing.
	Inference time.Duration
}

// ImagesPerSecond is the extraction speed of this call.
func (r *Result) ImagesPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Computed) / r.Elapsed.Seconds()
}

// ErrMismatch is wrapped by the errors about an existing cache that was
// made with another model or settings or from other files.
var ErrMismatch = errors.New("extractor: the cache does not match")

// ErrNonFinite is wrapped by the error about a batch whose features hold
// NaN or ±Inf: nothing of that batch is written.
var ErrNonFinite = errors.New("extractor: non-finite features")

// checkFinite stops at a batch whose features (rows of dim values, of the
// Source items idx) hold NaN or ±Inf. Real images through a sound backbone
// never give them, so the error suspects the model, naming the images.
func (e *Extractor) checkFinite(src *dataset.Source, idx []int, feats []float32, dim int) error {
	var bad []string
	for j := range idx {
		for _, v := range feats[j*dim : (j+1)*dim] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				bad = append(bad, src.Path(idx[j]))
				break
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	const show = 3
	names := strings.Join(bad[:min(show, len(bad))], ", ")
	if len(bad) > show {
		names += fmt.Sprintf(" and %d more", len(bad)-show)
	}
	return fmt.Errorf("%w: %s gave NaN or Inf for %d of the %d images of a batch (%s); the model is likely damaged (weights that hold NaN or Inf), not the images; finished chunks are kept",
		ErrNonFinite, e.path, len(bad), len(idx), names)
}

// ErrUnreadableCache is wrapped by the error about an existing cache whose
// manifest cannot be read. Like a mismatching cache, Settings.Force
// replaces it.
var ErrUnreadableCache = errors.New("extractor: the existing cache cannot be read")

// Extract streams the items idx of src (nil means all, in order) through
// the backbone into the cache folder dir: a new cache, or the rest of an
// unfinished one made with the same model, settings and files. A complete
// matching cache is left as it is (Result.UpToDate). A cache that does not
// match is an error wrapping ErrMismatch unless s.Force. Cancelling ctx
// stops within a batch; what is finished stays and the same call resumes.
func (e *Extractor) Extract(ctx context.Context, src *dataset.Source, idx []int, dir string, s Settings) (*Result, error) {
	t0 := time.Now()
	interp, err := dataset.ParseInterpolation(string(s.Interpolation))
	if err != nil {
		return nil, fmt.Errorf("extractor: %w", err)
	}
	s.Interpolation = interp
	if err := s.checkViews(); err != nil {
		return nil, err
	}
	if idx == nil {
		idx = make([]int, len(src.Items))
		for i := range idx {
			idx[i] = i
		}
	}
	if len(idx) == 0 && s.Shard == nil {
		return nil, fmt.Errorf("extractor: %s: no images to extract", src.Dir)
	}
	listing := make([]cache.Item, len(idx))
	byPath := make(map[string]int, len(idx))
	for k, i := range idx {
		if i < 0 || i >= len(src.Items) {
			return nil, fmt.Errorf("extractor: item index %d out of range [0,%d)", i, len(src.Items))
		}
		it := src.Items[i]
		listing[k] = cache.Item{Path: it.Path, Label: it.Label, Size: it.Size, ModTime: it.ModTime}
		byPath[it.Path] = i
	}
	want, err := e.manifest(src, s)
	if err != nil {
		return nil, err
	}

	w, res, err := e.openCache(ctx, src, listing, byPath, dir, want, s)
	if err != nil {
		return nil, stopped(dir, err)
	}
	if res != nil {
		res.Elapsed = time.Since(t0)
		return res, nil
	}
	res = &Result{Dir: dir, Fingerprint: want.Fingerprint, Reused: w.Manifest().DoneRows()}
	err = e.fill(ctx, w, src, byPath, s, res)
	err = errors.Join(err, w.Close())
	m := w.Manifest()
	res.N, res.Skipped, res.Elapsed = m.N, m.Skipped, time.Since(t0)
	if err != nil {
		return res, stopped(dir, err)
	}
	return res, nil
}

// stopped names the cache in a cancellation error, which otherwise is
// ctx's bare error.
func stopped(dir string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("extractor: %s: stopped (%w); finished chunks are kept and the same call resumes", dir, err)
	}
	return err
}

// manifest is the part of a new cache's manifest that the model and
// settings decide.
func (e *Extractor) manifest(src *dataset.Source, s Settings) (*cache.Manifest, error) {
	pre, err := json.Marshal(e.spec.Preprocessing)
	if err != nil {
		return nil, fmt.Errorf("extractor: %w", err)
	}
	m := &cache.Manifest{
		Model:         cache.ModelRef{Dir: e.dir, ExtractorSHA256: e.sha256, Preset: e.spec.Preset, Quantization: e.spec.QuantizationScheme()},
		Size:          e.size,
		Interpolation: string(s.Interpolation),
		Preprocessing: pre,
		Classes:       slices.Clone(src.Classes),
		FeatureDim:    e.spec.Features.Dim,
		Split:         s.Split,
	}
	if s.Shard != nil {
		sh := *s.Shard
		sh.Ran.ORT, sh.Ran.CPUFeatures = ortlib.Version(), cpuFeatures()
		sh.Ran.Provider = string(e.device)
		sh.Ran.Host, _ = os.Hostname()
		m.Shard = &sh
	}
	if dataset.IsURL(src.Dir) {
		m.DataDir = src.Dir // the URL as given: OpenData refuses one that holds credentials
	} else if abs, err := filepath.Abs(src.Dir); err == nil {
		m.DataDir = abs
	}
	if e.maps != nil {
		side := e.size / e.spec.Maps.Stride
		m.MapsShape = []int{e.spec.Maps.Channels, side, side}
	}
	if s.Views > 1 {
		m.Views, m.Augment = s.Views, &cache.AugmentRef{Spec: s.Augment.String(), Seed: s.AugmentSeed}
	}
	m.Fingerprint = cache.Fingerprint(m.FingerprintInput())
	return m, nil
}

// openCache decides between a new cache, resuming one, and one that is up
// to date (a non-nil Result and no Writer).
func (e *Extractor) openCache(ctx context.Context, src *dataset.Source, listing []cache.Item, byPath map[string]int,
	dir string, want *cache.Manifest, s Settings) (*cache.Writer, *Result, error) {
	old, err := cache.ReadManifest(dir)
	switch {
	case err == nil && !s.Force:
		if err := compatible(dir, old, want, listing); err != nil {
			return nil, nil, err
		}
		if old.Complete() {
			// Up to date only if the arrays still are what the manifest
			// says: a file emptied, cut or changed since is no cache.
			if err := cache.Verify(ctx, dir); err != nil {
				return nil, nil, fmt.Errorf("extractor: %s is complete but damaged: %w", dir, err)
			}
			return nil, &Result{Dir: dir, Fingerprint: old.Fingerprint, N: old.N, Reused: old.N, Skipped: old.Skipped, UpToDate: true}, nil
		}
		e.prog.Log(fmt.Sprintf("extractor: resuming %s: %d of %d images already done", dir, old.DoneRows(), old.N))
		w, err := cache.Resume(ctx, dir)
		if err != nil {
			return nil, nil, fmt.Errorf("extractor: %w", err)
		}
		return w, nil, nil
	case err != nil && !errors.Is(err, cache.ErrNotCache) && !s.Force:
		if derr := cache.CheckDir(dir); derr != nil {
			return nil, nil, fmt.Errorf("extractor: %w", derr) // a file or other data: Force would not help
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrUnreadableCache, err)
	}
	// A new cache. Check the folder before the check pass, which can take
	// a while on a large dataset.
	if err := cache.CheckDir(dir); err != nil {
		return nil, nil, fmt.Errorf("extractor: %w", err)
	}
	bad, err := e.check(ctx, src, listing, byPath, s)
	if err != nil {
		return nil, nil, err
	}
	m := *want
	for _, it := range listing {
		if reason, isBad := bad[it.Path]; isBad {
			m.Skipped = append(m.Skipped, cache.Skipped{Item: it, Reason: reason})
			continue
		}
		m.Items = append(m.Items, it)
	}
	if len(m.Items) == 0 && len(listing) > 0 {
		return nil, nil, fmt.Errorf("extractor: %s: none of the %d images can be decoded (first: %s: %s)", src.Dir, len(listing), m.Skipped[0].Path, m.Skipped[0].Reason)
	}
	m.N = len(m.Items)
	m.ChunkSize = cache.ChunkSize(m.N, e.batch)
	if n := len(m.Skipped); n > 0 {
		e.prog.Log(fmt.Sprintf("extractor: %d of %d images cannot be decoded and are left out (first: %s: %s)",
			n, len(listing), src.PathOf(m.Skipped[0].Path), m.Skipped[0].Reason))
	}
	w, err := cache.Create(dir, &m)
	if err != nil {
		return nil, nil, fmt.Errorf("extractor: %w", err)
	}
	return w, nil, nil
}

// compatible explains why an existing cache cannot be resumed or reused.
func compatible(dir string, old, want *cache.Manifest, listing []cache.Item) error {
	var why []string
	if old.Model.ExtractorSHA256 != want.Model.ExtractorSHA256 {
		why = append(why, fmt.Sprintf("another model (%s, sha256 %.12s…; now %s, %.12s…)", old.Model.Dir, old.Model.ExtractorSHA256, want.Model.Dir, want.Model.ExtractorSHA256))
	}
	if old.Model.Preset != want.Model.Preset {
		why = append(why, fmt.Sprintf("preset %s (now %s)", old.Model.Preset, want.Model.Preset))
	}
	if old.Size != want.Size {
		why = append(why, fmt.Sprintf("size %d (now %d)", old.Size, want.Size))
	}
	if old.Interpolation != want.Interpolation {
		why = append(why, fmt.Sprintf("interpolation %s (now %s)", old.Interpolation, want.Interpolation))
	}
	if old.AugmentString() != want.AugmentString() {
		why = append(why, fmt.Sprintf("%s (now %s)", old.AugmentString(), want.AugmentString()))
	}
	if len(why) == 0 && old.Fingerprint != want.Fingerprint {
		why = append(why, "other preprocessing")
	}
	if !slices.Equal(old.Classes, want.Classes) {
		why = append(why, fmt.Sprintf("classes %v (now %v)", old.Classes, want.Classes))
	}
	if (old.MapsShape == nil) != (want.MapsShape == nil) || !slices.Equal(old.MapsShape, want.MapsShape) {
		if old.MapsShape == nil {
			why = append(why, "no maps (now with maps)")
		} else if want.MapsShape == nil {
			why = append(why, "maps (now without)")
		} else {
			why = append(why, fmt.Sprintf("maps %v (now %v)", old.MapsShape, want.MapsShape))
		}
	}
	if old.FeatureDim != want.FeatureDim {
		why = append(why, fmt.Sprintf("%d features (now %d)", old.FeatureDim, want.FeatureDim))
	}
	if !equalSplit(old.Split, want.Split) {
		why = append(why, fmt.Sprintf("split %s (now %s)", splitString(old.Split), splitString(want.Split)))
	}
	why = append(why, shardDiff(old.Shard, want.Shard)...)
	if len(why) > 0 {
		return fmt.Errorf("%w: %s was made with %s", ErrMismatch, dir, strings.Join(why, ", "))
	}
	if d := old.DiffItems(listing); !d.Empty() {
		return fmt.Errorf("%w: the dataset changed since %s was made: %s", ErrMismatch, dir, d)
	}
	return nil
}

// shardDiff says how a cache's shard record differs from the shard being
// extracted: another shard, another cut, or another listing of the data.
func shardDiff(old, want *cache.ShardRef) []string {
	switch {
	case old == nil && want == nil:
		return nil
	case old == nil:
		return []string{"no shard (now shard " + cache.ShardName(want.Index, want.Count) + ")"}
	case want == nil:
		return []string{"shard " + cache.ShardName(old.Index, old.Count) + " (now none)"}
	}
	var why []string
	if old.Index != want.Index || old.Count != want.Count {
		why = append(why, fmt.Sprintf("shard %s (now %s)", cache.ShardName(old.Index, old.Count), cache.ShardName(want.Index, want.Count)))
	}
	if old.Start != want.Start || old.End != want.End || old.Total != want.Total || old.Batch != want.Batch {
		why = append(why, fmt.Sprintf("rows [%d,%d) of %d in batches of %d (now [%d,%d) of %d in batches of %d)",
			old.Start, old.End, old.Total, old.Batch, want.Start, want.End, want.Total, want.Batch))
	}
	if old.Listing != want.Listing {
		why = append(why, fmt.Sprintf("another listing of the dataset (sha256 %.12s…, now %.12s…)", old.Listing, want.Listing))
	}
	return why
}

func equalSplit(a, b *cache.SplitRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func splitString(s *cache.SplitRef) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%s (validation fraction %g, seed %d)", s.Part, s.Val, s.Seed)
}

// fill computes the pending chunks of w. With SkipBad, an image that fails
// to decode is dropped from the cache and the chunk it was in starts over.
func (e *Extractor) fill(ctx context.Context, w *cache.Writer, src *dataset.Source, byPath map[string]int, s Settings, res *Result) error {
	for {
		m := w.Manifest()
		pending := m.Pending()
		if len(pending) == 0 {
			return nil
		}
		var rows, idx []int
		for _, r := range pending {
			for row := r.Start; row < r.End; row++ {
				rows = append(rows, row)
				idx = append(idx, byPath[m.Items[row].Path])
			}
		}
		// Progress counts images × views: each is one backbone run.
		k := m.NumViews()
		e.prog.Start("extract", m.N*k, m.DoneRows()*k)
		err := e.stream(ctx, w, src, rows, idx, s, res)
		e.prog.Finish()
		var de *dataset.DecodeError
		if !errors.As(err, &de) {
			return err
		}
		row := -1
		for k, i := range idx {
			if src.Path(i) == de.Path {
				row = rows[k]
				break
			}
		}
		if !s.SkipBad || row < 0 {
			return fmt.Errorf("extractor: %w; finished chunks are kept", de)
		}
		e.prog.Log(fmt.Sprintf("extractor: skipped %s: %v", de.Path, de.Err))
		if err := w.Drop(row, de.Err.Error()); err != nil {
			return fmt.Errorf("extractor: %w", err)
		}
	}
}

// stream runs the rows (cache row numbers, in order) whose Source indices
// are idx through the session and writes them. Batches are cut from the
// start of the first pending chunk, so the same command gives the same
// batches whether it runs uninterrupted or resumes.
func (e *Extractor) stream(ctx context.Context, w *cache.Writer, src *dataset.Source, rows, idx []int, s Settings, res *Result) error {
	l, err := dataset.NewLoader(src, idx, dataset.LoaderSettings{
		Size: e.size, Interpolation: s.Interpolation, Preprocessing: e.spec.Preprocessing,
		Batch: e.batch, Workers: s.Workers,
		Views: s.Views, Augment: s.Augment, AugmentSeed: s.AugmentSeed,
	})
	if err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	defer l.Close()
	m := w.Manifest()
	in := e.input.GetData()
	imageLen := l.ImageLen()
	dim := m.FeatureDim
	mapLen := 0
	if e.maps != nil {
		mapLen = len(e.maps.GetData()) / e.batch
	}
	labels := make([]int32, e.batch)
	var vw *viewWriter
	if k := m.NumViews(); k > 1 {
		vw = newViewWriter(w, rows, k, dim, mapLen)
	}
	for {
		b, err := l.Next(ctx, in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if b.Count < e.batch {
			// Padding rows are computed and thrown away; zeros keep every
			// run's input a function of the command alone.
			clear(in[b.Count*imageLen:])
		}
		t0 := time.Now()
		if err := e.run(ctx); err != nil {
			return err
		}
		res.Inference += time.Since(t0)
		feats := e.features.GetData()
		var maps []float32
		if e.maps != nil {
			maps = e.maps.GetData()
		}
		if err := e.checkFinite(src, b.Indices, feats[:b.Count*dim], dim); err != nil {
			return err
		}
		if vw != nil {
			if err := vw.write(b, feats, maps); err != nil {
				return fmt.Errorf("extractor: %w", err)
			}
			res.Computed += b.Count
			e.prog.Add(b.Count)
			continue
		}
		for j := range b.Count {
			labels[j] = int32(b.Labels[j])
		}
		// Write runs of consecutive rows within one chunk.
		for j := 0; j < b.Count; {
			row0 := rows[b.Start+j]
			k := j + 1
			for k < b.Count && rows[b.Start+k] == row0+(k-j) && (row0+(k-j))%m.ChunkSize != 0 {
				k++
			}
			var mp []float32
			if maps != nil {
				mp = maps[j*mapLen : k*mapLen]
			}
			if err := w.Write(row0, feats[j*dim:k*dim], labels[j:k], mp); err != nil {
				return fmt.Errorf("extractor: %w", err)
			}
			j = k
		}
		res.Computed += b.Count
		e.prog.Add(b.Count)
	}
}
