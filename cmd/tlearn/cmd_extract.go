package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/internal/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagExtractModel         = "model"
	flagExtractData          = "data"
	flagExtractCache         = "cache"
	flagExtractVal           = "val"
	flagExtractSeed          = "seed"
	flagExtractSize          = "size"
	flagExtractInterpolation = "interpolation"
	flagExtractBatch         = "batch"
	flagExtractMaps          = "maps"
	flagExtractForce         = "force"
	flagExtractSkipBad       = "skip-bad"
	flagExtractStrict        = "strict"
)

// maxListedSkips bounds the files listed one per line in a summary.
const maxListedSkips = 20

func extractCommand() *cli.Command {
	return &cli.Command{
		Name:  "extract",
		Usage: "run every image of a class-folder dataset through the backbone once and cache the features",
		Description: `Streams the images of --data (one sub-folder per class) through a prepared
model (tlearn models prepare) and writes a feature cache: features.npy [N,D],
labels.npy [N], with --maps also maps.npy [N,C,h,w] (float16, for finetune),
and manifest.json. With --val F the images are split per class, seeded, and two
caches are written: CACHE/train and CACHE/val.

The cache is filled chunk by chunk: Ctrl-C or a killed run resumes where it
stopped when the same command is run again. A cache made with another model,
size, interpolation, split or from other files is refused (--force rebuilds).
Unreadable images stop the run with the file's name; --skip-bad leaves them out
and lists them.

Example:
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --maps
   tlearn extract --model model --data photos --cache photos.cache --size 160 --interpolation bilinear`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagExtractModel, Usage: "prepared model `DIR` (tlearn models prepare)", Required: true},
			&cli.StringFlag{Name: flagExtractData, Usage: "dataset `DIR` with one sub-folder of images per class", Required: true},
			&cli.StringFlag{Name: flagExtractCache, Usage: "cache `DIR` to write (made if missing)", Required: true},
			&cli.Float64Flag{Name: flagExtractVal, Usage: "validation `FRACTION` (0..1): writes CACHE/train and CACHE/val"},
			&cli.Uint64Flag{Name: flagExtractSeed, Usage: "seed of the --val split", Value: 1},
			&cli.IntFlag{Name: flagExtractSize, Usage: "input side in pixels, a multiple of 32", DefaultText: "the model's, 224 for VGG16"},
			&cli.StringFlag{Name: flagExtractInterpolation, Value: string(dataset.Nearest), Usage: "resize filter: nearest (Keras' default), bilinear, bicubic or lanczos3"},
			&cli.IntFlag{Name: flagExtractBatch, Usage: "images per ONNX Runtime run", DefaultText: strconv.Itoa(extractor.DefaultBatch)},
			&cli.BoolFlag{Name: flagExtractMaps, Usage: "also store block4_pool maps (float16), needed by finetune"},
			&cli.BoolFlag{Name: flagExtractForce, Usage: "rebuild a cache made with other settings or from other files"},
			&cli.BoolFlag{Name: flagExtractSkipBad, Usage: "leave images that cannot be decoded out of the cache, and list them"},
			&cli.BoolFlag{Name: flagExtractStrict, Usage: "fail on hidden or non-image files in the dataset instead of skipping them"},
		),
		Action: extractAction,
	}
}

func extractAction(c *cli.Context) error {
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	interp, err := dataset.ParseInterpolation(c.String(flagExtractInterpolation))
	if err != nil {
		return usageError{err}
	}
	val := c.Float64(flagExtractVal)
	if c.IsSet(flagExtractVal) && !(val > 0 && val < 1) {
		return usageError{fmt.Errorf("--%s must be between 0 and 1, got %v", flagExtractVal, val)}
	}
	for _, f := range []string{flagExtractSize, flagExtractBatch} {
		if c.Int(f) < 0 {
			return usageError{fmt.Errorf("--%s must be positive, got %d", f, c.Int(f))}
		}
	}
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("extract takes no arguments (got %q); use --data", c.Args().First())}
	}
	w := errWriter(c)
	cacheDir := c.String(flagExtractCache)
	if err := checkCacheLayout(cacheDir, c.IsSet(flagExtractVal)); err != nil {
		return err
	}

	src, err := dataset.Open(c.String(flagExtractData), dataset.Settings{Strict: c.Bool(flagExtractStrict)})
	if err != nil {
		return err
	}
	reportListingSkips(w, src)

	if _, err := initORT(c); err != nil {
		return err
	}
	prog := newExtractProgress(w)
	e, err := extractor.Open(c.String(flagExtractModel), extractor.Options{
		ORT: opts, Size: c.Int(flagExtractSize), Batch: c.Int(flagExtractBatch), Maps: c.Bool(flagExtractMaps), Progress: prog,
	})
	if err != nil {
		return err
	}
	defer e.Close()

	s := extractor.Settings{Interpolation: interp, Force: c.Bool(flagExtractForce), SkipBad: c.Bool(flagExtractSkipBad)}
	type part struct {
		dir   string
		idx   []int
		split *cache.SplitRef
	}
	parts := []part{{dir: cacheDir}}
	if c.IsSet(flagExtractVal) {
		seed := c.Uint64(flagExtractSeed)
		train, valIdx, err := dataset.Split(src, val, seed)
		if err != nil {
			return err
		}
		parts = []part{
			{filepath.Join(cacheDir, "train"), train, &cache.SplitRef{Part: "train", Val: val, Seed: seed}},
			{filepath.Join(cacheDir, "val"), valIdx, &cache.SplitRef{Part: "val", Val: val, Seed: seed}},
		}
	}
	dev, _ := e.Device()
	for _, p := range parts {
		s.Split = p.split
		prog.label = p.dir
		res, err := e.Extract(c.Context, src, p.idx, p.dir, s)
		prog.Finish()
		if err != nil {
			return err
		}
		printExtractSummary(w, res, e, dev)
	}
	return nil
}

// errWriter is stderr(c), or the app's ErrWriter when a test set one.
func errWriter(c *cli.Context) io.Writer {
	if c.Bool(flagQuiet) || c.App.ErrWriter == nil {
		return stderr(c)
	}
	return c.App.ErrWriter
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
		return fmt.Errorf("extract: %s holds a cache without a validation split; drop --%s to use it, or choose another --%s folder", dir, flagExtractVal, flagExtractCache)
	case !split && pair:
		return fmt.Errorf("extract: %s holds a train/val pair made with --%s; add the same --%s and --%s to resume it, or choose another --%s folder",
			dir, flagExtractVal, flagExtractVal, flagExtractSeed, flagExtractCache)
	}
	return nil
}

// reportListingSkips lists the files that the dataset listing passed over
// (hidden, not images, outside class folders).
func reportListingSkips(w io.Writer, src *dataset.Source) {
	if len(src.Skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "%s: %d files are not used (--%s makes this an error):\n", src.Dir, len(src.Skipped), flagExtractStrict)
	for i, s := range src.Skipped {
		if i == maxListedSkips {
			fmt.Fprintf(w, "  ... and %d more\n", len(src.Skipped)-i)
			break
		}
		fmt.Fprintf(w, "  %s: %s\n", s.Path, s.Reason)
	}
}

func printExtractSummary(w io.Writer, res *extractor.Result, e *extractor.Extractor, dev any) {
	what := fmt.Sprintf("%d features", e.Spec().Features.Dim)
	if m, err := cache.ReadManifest(res.Dir); err == nil && m.MapsShape != nil {
		what += fmt.Sprintf(", maps %d×%d×%d", m.MapsShape[0], m.MapsShape[1], m.MapsShape[2])
	}
	size := ""
	if n, err := cache.DiskSize(res.Dir); err == nil {
		size = ", " + fsutil.FormatBytes(n)
	}
	if res.UpToDate {
		fmt.Fprintf(w, "%s: up to date: %d images, %s%s\n", res.Dir, res.N, what, size)
	} else {
		reused := ""
		if res.Reused > 0 {
			reused = fmt.Sprintf(", %d reused", res.Reused)
		}
		busy := ""
		if res.Elapsed > 0 {
			busy = fmt.Sprintf(", ONNX Runtime busy %.0f%%", 100*res.Inference.Seconds()/res.Elapsed.Seconds())
		}
		fmt.Fprintf(w, "%s: %d images (%d computed in %s, %.1f images/s on %s%s%s), %s%s\n",
			res.Dir, res.N, res.Computed, res.Elapsed.Round(time.Second), res.ImagesPerSecond(), dev, busy, reused, what, size)
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(w, "%s: %d images left out (--%s):\n", res.Dir, len(res.Skipped), flagExtractSkipBad)
		for i, s := range res.Skipped {
			if i == maxListedSkips {
				fmt.Fprintf(w, "  ... and %d more (tlearn cache info %s lists all)\n", len(res.Skipped)-i, res.Dir)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", s.Path, s.Reason)
		}
	}
}

// extractProgress adapts countBar to extractor.Progress, naming the phase
// and the cache folder being written.
type extractProgress struct {
	*countBar
	label string // the cache folder being written
}

func newExtractProgress(w io.Writer) *extractProgress {
	return &extractProgress{countBar: newCountBar(w, "images")}
}

func (p *extractProgress) Log(msg string) {
	p.Clear()
	fmt.Fprintln(p.w, strings.TrimSpace(msg))
}

func (p *extractProgress) Start(phase string, total, done int) {
	verb := "extracting"
	if phase == "check" {
		verb = "checking images for"
	}
	d := fmt.Sprintf("%s %s", verb, p.label)
	if done > 0 {
		d += fmt.Sprintf(" (%d done before)", done)
	}
	p.countBar.Start(d, total, done)
}

// Checks that extractProgress satisfies the interface Extract reports to.
var _ extractor.Progress = (*extractProgress)(nil)
