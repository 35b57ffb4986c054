package experiment

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
)

// maxListedSkips bounds the files listed one per line in a summary.
const maxListedSkips = 20

// ExtractSettings say which images go through which prepared model into
// which cache. The zero value of every optional field means the default of
// extractor.Options, extractor.Settings and dataset.Settings.
type ExtractSettings struct {
	// Model is the prepared model folder (models.Prepare).
	Model string
	// Data holds one sub-folder of images per class.
	Data string
	// Cache is the cache folder to write (made if missing); with Val it
	// receives two caches, Cache/train and Cache/val.
	Cache string
	// Val, between 0 and 1, holds out that fraction of every class as a
	// validation cache, split by Seed; 0 writes one cache of every image.
	Val  float64
	Seed uint64

	Runtime       ortlib.Options
	Size          int  // input side; 0 means the model's default
	Batch         int  // images per ONNX Runtime run; 0 means extractor.DefaultBatch
	Maps          bool // also store block4_pool maps (for FineTune)
	Interpolation dataset.Interpolation
	Force         bool // rebuild a cache made with other settings or files
	SkipBad       bool // leave undecodable images out instead of failing
	Strict        bool // fail on hidden or non-image files in Data
	// Views, Augment and AugmentSeed store that many views of each image,
	// view 0 plain and the others augmented (extractor.Settings); 0 or 1
	// view is the plain cache.
	Views       int
	Augment     dataset.Augment
	AugmentSeed uint64
	// Shard, when set, writes shard Index of Count of a sharded
	// extraction instead of the whole cache: Cache/shards/IIIII-of-NNNNN,
	// an ordinary cache (or train/val pair) of a contiguous run of the
	// batches of each part, which MergeShards joins. The listing is read
	// from Cache/plan.json when WritePlan wrote one.
	Shard *Shard
	// Version is the tlearn version that a shard records.
	Version string
}

// Shard is one of Count shards of an extraction, Index from 0.
type Shard struct{ Index, Count int }

// ShardDir is the folder of shard sh of the sharded cache dir.
func ShardDir(dir string, sh Shard) string {
	return filepath.Join(dir, cache.ShardsDir, cache.ShardName(sh.Index, sh.Count))
}

// Extract streams the images of s.Data through the prepared model into
// the cache (or the train/val pair) at s.Cache. A cache that is complete
// and up to date is only checked; an unfinished one resumes. It logs what
// the listing passed over and one summary per cache on p, whose phases are
// named after the cache being written. The caller initializes ONNX Runtime.
func Extract(ctx context.Context, s ExtractSettings, p progress.Reporter) ([]*extractor.Result, error) {
	p = progress.OrNop(p)
	if s.Val != 0 && !(s.Val > 0 && s.Val < 1) {
		return nil, fmt.Errorf("%w: validation fraction %v, want between 0 and 1", ErrSettings, s.Val)
	}
	if err := fsutil.CheckOutput(s.Cache, localData(s.Data), s.Model); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	out := s.Cache
	if sh := s.Shard; sh != nil {
		if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
			return nil, fmt.Errorf("%w: shard %d of %d, want an index from 0 to the count less one", ErrSettings, sh.Index, sh.Count)
		}
		out = ShardDir(s.Cache, *sh)
	}
	lock, err := lockOutput(out, p, cacheFiles(out)...)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := checkCacheLayout(out, s.Val > 0); err != nil {
		return nil, err
	}
	src, err := openListing(ctx, s)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	logListingSkips(p, src)

	parts := []extractPart{{dir: out}}
	if s.Val > 0 {
		train, val, err := dataset.Split(src, s.Val, s.Seed)
		if err != nil {
			return nil, err
		}
		parts = []extractPart{
			{dir: filepath.Join(out, "train"), idx: train, split: &cache.SplitRef{Part: "train", Val: s.Val, Seed: s.Seed}},
			{dir: filepath.Join(out, "val"), idx: val, split: &cache.SplitRef{Part: "val", Val: s.Val, Seed: s.Seed}},
		}
	}
	pp := &partReporter{Reporter: p}
	e, err := extractor.Open(s.Model, extractor.Options{ORT: s.Runtime, Size: s.Size, Batch: s.Batch, Maps: s.Maps, Progress: pp})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	es := extractor.Settings{Interpolation: s.Interpolation, Force: s.Force, SkipBad: s.SkipBad,
		Views: s.Views, Augment: s.Augment, AugmentSeed: s.AugmentSeed}
	if s.Shard != nil {
		parts = shardParts(parts, len(src.Items), e.Batch(), *s.Shard, listingSHA256(src), s.Version)
	}
	var results []*extractor.Result
	for _, part := range parts {
		es.Split, es.Shard = part.split, part.shard
		pp.dir = part.dir
		if s.Views > 1 {
			logDiskCost(p, e, part, len(src.Items), s)
		}
		res, err := e.Extract(ctx, src, part.idx, part.dir, es)
		if err != nil {
			return nil, err
		}
		logExtractSummary(p, res, e)
		results = append(results, res)
	}
	return results, nil
}

// localData is the folder on this machine that the dataset data names, for
// the output guards: data itself, the path of a file:// URL, or "" for a
// bucket, which no cache folder can overlap.
func localData(data string) string {
	if !dataset.IsURL(data) {
		return data
	}
	if u, err := url.Parse(data); err == nil && u.Scheme == "file" {
		return u.Path
	}
	return ""
}

// cacheFiles are the files and caches inside the cache folder dir (one
// cache, or a train/val pair) whose temporaries only dir's writer makes.
func cacheFiles(dir string) []string {
	var p []string
	for _, d := range []string{dir, filepath.Join(dir, "train"), filepath.Join(dir, "val")} {
		for _, name := range []string{cache.ManifestFile, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile} {
			p = append(p, filepath.Join(d, name))
		}
	}
	return p
}

// extractPart is one cache of an extraction: all images, or one side of
// a split.
type extractPart struct {
	dir   string
	idx   []int
	split *cache.SplitRef
	shard *cache.ShardRef
}

// partReporter names the extractor's phases after the cache being written.
type partReporter struct {
	progress.Reporter
	dir string
}

func (p *partReporter) Start(phase string, total, done int) {
	verb := "extracting"
	if phase == "check" {
		verb = "checking images for"
	}
	d := verb + " " + p.dir
	if done > 0 {
		d += fmt.Sprintf(" (%d done before)", done)
	}
	p.Reporter.Start(d, total, done)
}

// checkCacheLayout refuses to mix a single cache and a train/val pair in
// one folder, with a message that says which one is there.
func checkCacheLayout(dir string, split bool) error {
	_, err := os.Stat(filepath.Join(dir, cache.ManifestFile))
	single := err == nil
	_, err = os.Stat(filepath.Join(dir, "train", cache.ManifestFile))
	pair := err == nil
	switch {
	case split && single:
		return fmt.Errorf("%w: %s holds a cache without a validation split", ErrCacheLayout, dir)
	case !split && pair:
		return fmt.Errorf("%w: %s holds a train/val pair made with a validation split", ErrCacheLayout, dir)
	}
	return nil
}

// logListingSkips lists the files that the dataset listing passed over
// (hidden, not images, outside class folders).
func logListingSkips(p progress.Reporter, src *dataset.Source) {
	if len(src.Skipped) == 0 {
		return
	}
	p.Log(fmt.Sprintf("%s: %d files are not used (strict listing makes this an error):", src.Dir, len(src.Skipped)))
	for i, s := range src.Skipped {
		if i == maxListedSkips {
			p.Log(fmt.Sprintf("  ... and %d more", len(src.Skipped)-i))
			break
		}
		p.Log(fmt.Sprintf("  %s: %s", s.Path, s.Reason))
	}
}

// logDiskCost says what a cache of views will take on disk, before the
// extraction starts.
func logDiskCost(p progress.Reporter, e *extractor.Extractor, part extractPart, all int, s ExtractSettings) {
	n := len(part.idx)
	if part.idx == nil {
		n = all
	}
	f, m := e.ArrayBytes(n, s.Views)
	msg := fmt.Sprintf("%s: %d images × %d views (%s, seed %d): features %s", part.dir, n, s.Views, s.Augment, s.AugmentSeed, fsutil.FormatBytes(f))
	if m > 0 {
		msg += ", maps " + fsutil.FormatBytes(m)
	}
	p.Log(msg + " on disk")
}

func logExtractSummary(p progress.Reporter, res *extractor.Result, e *extractor.Extractor) {
	what := fmt.Sprintf("%d features", e.Spec().Features.Dim)
	m, err := cache.ReadManifest(res.Dir)
	if err == nil && m.MapsShape != nil {
		what += fmt.Sprintf(", maps %d×%d×%d", m.MapsShape[0], m.MapsShape[1], m.MapsShape[2])
	}
	if err == nil && m.Views > 1 {
		what += ", " + m.AugmentString()
	}
	size := ""
	if n, err := cache.DiskSize(res.Dir); err == nil {
		size = ", " + fsutil.FormatBytes(n)
	}
	if res.UpToDate {
		p.Log(fmt.Sprintf("%s: up to date: %d images, %s%s", res.Dir, res.N, what, size))
	} else {
		reused := ""
		if res.Reused > 0 {
			reused = fmt.Sprintf(", %d reused", res.Reused)
		}
		busy := ""
		if res.Elapsed > 0 {
			busy = fmt.Sprintf(", ONNX Runtime busy %.0f%%", 100*res.Inference.Seconds()/res.Elapsed.Seconds())
		}
		dev, _ := e.Device()
		counted, rate := "", "images"
		if err == nil && m.Views > 1 {
			counted, rate = "views ", "views" // each view is one image through the backbone
		}
		p.Log(fmt.Sprintf("%s: %d images (%d %scomputed in %s, %.1f %s/s on %s%s%s), %s%s",
			res.Dir, res.N, res.Computed, counted, fsutil.FormatSeconds(res.Elapsed.Seconds()), res.ImagesPerSecond(), rate, dev, busy, reused, what, size))
	}
	if len(res.Skipped) > 0 {
		p.Log(fmt.Sprintf("%s: %d undecodable images left out:", res.Dir, len(res.Skipped)))
		for i, s := range res.Skipped {
			if i == maxListedSkips {
				p.Log(fmt.Sprintf("  ... and %d more (tlearn cache info %s lists all)", len(res.Skipped)-i, res.Dir))
				break
			}
			p.Log(fmt.Sprintf("  %s: %s", s.Path, strings.TrimSpace(s.Reason)))
		}
	}
}
