package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/experiment"
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
	flagExtractViews         = "views"
	flagExtractAugment       = "augment"
	flagExtractAugmentSeed   = "augment-seed"
	flagExtractShard         = "shard"
	flagExtractPlan          = "plan"
)

// The environment variables that --shard auto/N reads the index from.
const (
	envSlurmArrayTaskID   = "SLURM_ARRAY_TASK_ID"
	envJobCompletionIndex = "JOB_COMPLETION_INDEX"
)

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

Images are resized to --size with --interpolation. The default, ` + string(dataset.DefaultInterpolation) + `, gave
the best accuracy when CIFAR-10's 32×32 images were upsampled to 224
(BENCHMARKS.md, "Resize filter"); bilinear, bicubic and lanczos3 are Pillow's,
antialiased when an image is shrunk. nearest is Keras' load_img default, which
the Keras tutorial (and tlearn compare) use.

--views K --augment LIST stores K views of every image: view 0 is the plain
image, views 1..K-1 are augmented (flip: mirrored left to right half of the
time; crop[=S]: a random crop of at least S of the area, default 0.5, before
resizing; jitter[=J]: brightness and contrast scaled by up to ±J, default 0.2),
each a function of --augment-seed, the image's path and the view number alone.
The arrays gain a second axis: features.npy [N,K,D], maps.npy [N,K,C,h,w].
train and finetune draw one view per image per epoch; --tta averages the views'
probabilities in validation and evaluate. The disk cost is printed first.

--shard I/N writes shard I (from 0) of N: an ordinary, resumable cache of a
contiguous run of the batches of every part (all images, or train and val) in
CACHE/shards/IIIII-of-NNNNN, one writer at a time (a second task on the same
shard is refused, naming the holder's pid, host and command). Every shard lists
the dataset as a single run does (the same --val split) and computes the single
run's batches; tlearn cache merge CACHE then writes the cache that one run would
have written (give every shard the same --threads and --device: ONNX Runtime's
last bits depend on them). --shard auto/N takes I from $` + envSlurmArrayTaskID + ` (a Slurm array
task), else $` + envJobCompletionIndex + ` (a Kubernetes Indexed Job); N is always
given. --plan lists --data once into CACHE/plan.json (no --model needed), which
the shards then read instead of listing the data again; it is a no-op when the
listing is unchanged and refuses another one without --force.

Example:
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --maps
   tlearn extract --model model --data photos --cache photos.cache --size 160 --interpolation bicubic
   tlearn extract --model model --data images --val 0.2 --cache cache-aug --views 4 --augment flip,crop

   tlearn extract --plan --data images --val 0.2 --seed 1 --cache cache
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --shard 3/16
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --shard auto/16
   tlearn cache merge cache`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagExtractModel, Usage: "prepared model `DIR` (tlearn models prepare); not needed with --" + flagExtractPlan},
			&cli.StringFlag{Name: flagExtractData, Usage: dataUsage, Required: true},
			&cli.StringFlag{Name: flagExtractCache, Usage: "cache `DIR` to write (made if missing)", Required: true},
			&cli.Float64Flag{Name: flagExtractVal, Usage: "validation `FRACTION` (0..1): writes CACHE/train and CACHE/val"},
			&cli.Uint64Flag{Name: flagExtractSeed, Usage: "seed of the --val split", Value: 1},
			&cli.IntFlag{Name: flagExtractSize, Usage: "input side in pixels, a multiple of 32", DefaultText: "the model's, 224 for VGG16"},
			&cli.StringFlag{Name: flagExtractInterpolation, Value: string(dataset.DefaultInterpolation), Usage: interpolationUsage},
			&cli.IntFlag{Name: flagExtractBatch, Usage: "images per ONNX Runtime run", DefaultText: strconv.Itoa(extractor.DefaultBatch)},
			&cli.BoolFlag{Name: flagExtractMaps, Usage: "also store block4_pool maps (float16), needed by finetune"},
			&cli.BoolFlag{Name: flagExtractForce, Usage: "rebuild a cache made with other settings or from other files"},
			&cli.BoolFlag{Name: flagExtractSkipBad, Usage: "leave images that cannot be decoded out of the cache, and list them"},
			&cli.BoolFlag{Name: flagExtractStrict, Usage: "fail on hidden or non-image files in the dataset instead of skipping them"},
			&cli.IntFlag{Name: flagExtractViews, Value: 1, Usage: fmt.Sprintf("`K` views per image (1..%d): the plain image and K-1 augmented ones (needs --%s)", dataset.MaxViews, flagExtractAugment)},
			&cli.StringFlag{Name: flagExtractAugment, Usage: "augmentations of views 1..K-1: a comma-separated `LIST` of flip, crop[=MINAREA], jitter[=AMOUNT]"},
			&cli.Uint64Flag{Name: flagExtractAugmentSeed, Value: 1, Usage: "seed of the augmented views"},
			&cli.StringFlag{Name: flagExtractShard, Usage: "write shard `I/N` (I from 0) into CACHE/shards/; auto/N takes I from $" + envSlurmArrayTaskID + " or $" + envJobCompletionIndex},
			&cli.BoolFlag{Name: flagExtractPlan, Usage: "only list --data into CACHE/" + cache.PlanFile + " for the shards to read (no model needed)"},
		),
		Action: onInterrupt("the chunks already written to the cache are kept and the same command resumes from them", extractAction),
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
	if c.Bool(flagExtractPlan) {
		return planAction(c, val)
	}
	if !c.IsSet(flagExtractModel) {
		return usageError{fmt.Errorf("extract: missing --%s (see tlearn extract --help)", flagExtractModel)}
	}
	views, aug, err := viewFlags(c)
	if err != nil {
		return usageError{err}
	}
	var shard *experiment.Shard
	if c.IsSet(flagExtractShard) {
		sh, err := parseShard(c.String(flagExtractShard), os.Getenv)
		if err != nil {
			return usageError{fmt.Errorf("--%s: %w", flagExtractShard, err)}
		}
		shard = &sh
	}
	// A size the model does not take is bad usage, found before any work
	// or output; other problems with the model are Open's to report.
	var sizeErr *extractor.SizeError
	if _, err := extractor.InputSize(c.String(flagExtractModel), c.Int(flagExtractSize)); errors.As(err, &sizeErr) {
		return usageError{fmt.Errorf("--%s %d: %w", flagExtractSize, sizeErr.Size, err)}
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	p := newReporter(stderr(c))
	defer p.Finish()
	_, err = experiment.Extract(c.Context, experiment.ExtractSettings{
		Model: c.String(flagExtractModel), Data: c.String(flagExtractData), Cache: c.String(flagExtractCache),
		Val: val, Seed: c.Uint64(flagExtractSeed),
		Runtime: opts, Size: c.Int(flagExtractSize), Batch: c.Int(flagExtractBatch), Maps: c.Bool(flagExtractMaps),
		Interpolation: interp, Force: c.Bool(flagExtractForce), SkipBad: c.Bool(flagExtractSkipBad), Strict: c.Bool(flagExtractStrict),
		Views: views, Augment: aug, AugmentSeed: c.Uint64(flagExtractAugmentSeed),
		Shard: shard, Version: version,
	}, p)
	if errors.Is(err, experiment.ErrCacheLayout) {
		if c.IsSet(flagExtractVal) {
			return fmt.Errorf("%w; drop --%s to use it, or choose another --%s folder", err, flagExtractVal, flagExtractCache)
		}
		return fmt.Errorf("%w; add the same --%s and --%s to resume it, or choose another --%s folder", err, flagExtractVal, flagExtractSeed, flagExtractCache)
	}
	if errors.Is(err, experiment.ErrPlanMismatch) {
		return fmt.Errorf("%w (extract --%s --%s writes it again for this dataset and split)", err, flagExtractPlan, flagExtractForce)
	}
	if err == nil && shard != nil {
		p.Log(fmt.Sprintf("shard %d of %d is complete; tlearn cache merge --check %s reports every shard, tlearn cache merge %s joins them",
			shard.Index, shard.Count, c.String(flagExtractCache), c.String(flagExtractCache)))
	}
	return outputError(extractAdvice(err, c.Bool(flagExtractSkipBad)), flagExtractCache)
}

// planAction is extract --plan: list the dataset into CACHE/plan.json.
func planAction(c *cli.Context, val float64) error {
	if c.IsSet(flagExtractShard) {
		return usageError{fmt.Errorf("--%s lists the dataset for every shard; give --%s to the shards' extract commands instead", flagExtractPlan, flagExtractShard)}
	}
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("extract takes no arguments (got %q); use --data", c.Args().First())}
	}
	p := newReporter(stderr(c))
	defer p.Finish()
	cacheDir := c.String(flagExtractCache)
	pl, unchanged, err := experiment.WritePlan(c.Context, experiment.PlanSettings{
		Data: c.String(flagExtractData), Cache: cacheDir, Val: val, Seed: c.Uint64(flagExtractSeed),
		Strict: c.Bool(flagExtractStrict), Force: c.Bool(flagExtractForce),
	}, p)
	if errors.Is(err, experiment.ErrPlanMismatch) {
		return fmt.Errorf("%w; --%s replaces it (finished shards of the old listing are then refused by merge), or choose another --%s folder", err, flagExtractForce, flagExtractCache)
	}
	if err != nil {
		return outputError(err, flagExtractCache)
	}
	path := filepath.Join(cacheDir, cache.PlanFile)
	if unchanged {
		p.Log(fmt.Sprintf("%s: up to date: %d images in %d classes of %s", path, len(pl.Listing.Items), len(pl.Listing.Classes), pl.Listing.Data))
	} else {
		p.Log(fmt.Sprintf("%s: %d images in %d classes of %s; the shards (extract --%s I/N) read it", path, len(pl.Listing.Items), len(pl.Listing.Classes), pl.Listing.Data, flagExtractShard))
	}
	return nil
}

// parseShard reads --shard: I/N, or auto/N with I from the environment
// (getenv) of a Slurm array task or a Kubernetes Indexed Job.
func parseShard(s string, getenv func(string) string) (experiment.Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return experiment.Shard{}, fmt.Errorf("%q: want I/N (shard I from 0 of N, e.g. 3/16) or auto/N", s)
	}
	n, err := strconv.Atoi(ns)
	if err != nil {
		return experiment.Shard{}, fmt.Errorf("%q: the count %q is not a number", s, ns)
	}
	if n <= 0 {
		return experiment.Shard{}, fmt.Errorf("%q: the count must be at least 1, got %d", s, n)
	}
	from := ""
	if is == "auto" {
		for _, v := range []string{envSlurmArrayTaskID, envJobCompletionIndex} {
			if getenv(v) != "" {
				is, from = getenv(v), " (from $"+v+")"
				break
			}
		}
		if from == "" {
			return experiment.Shard{}, fmt.Errorf("%q: neither $%s (a Slurm array task) nor $%s (a Kubernetes Indexed Job) is set; give the index: I/%d", s, envSlurmArrayTaskID, envJobCompletionIndex, n)
		}
	}
	i, err := strconv.Atoi(is)
	if err != nil {
		return experiment.Shard{}, fmt.Errorf("%q: the index %q%s is not a number", s, is, from)
	}
	if i < 0 || i >= n {
		return experiment.Shard{}, fmt.Errorf("%q: the index %d%s is out of range: shards of %d are numbered 0 to %d", s, i, from, n, n-1)
	}
	return experiment.Shard{Index: i, Count: n}, nil
}

// viewFlags reads --views and --augment, which only make sense together.
func viewFlags(c *cli.Context) (int, dataset.Augment, error) {
	views := c.Int(flagExtractViews)
	aug, err := dataset.ParseAugment(c.String(flagExtractAugment))
	switch {
	case err != nil:
		return 0, aug, fmt.Errorf("--%s: %w", flagExtractAugment, err)
	case views < 1 || views > dataset.MaxViews:
		return 0, aug, fmt.Errorf("--%s must be between 1 and %d, got %d", flagExtractViews, dataset.MaxViews, views)
	case views > 1 && aug.IsZero():
		return 0, aug, fmt.Errorf("--%s %d needs --%s (e.g. --%s flip,crop): views 1..%d would repeat the plain image", flagExtractViews, views, flagExtractAugment, flagExtractAugment, views-1)
	case views == 1 && !aug.IsZero():
		return 0, aug, fmt.Errorf("--%s %s needs --%s 2 or more: view 0 is always the plain image", flagExtractAugment, aug, flagExtractViews)
	case views == 1 && c.IsSet(flagExtractAugmentSeed):
		return 0, aug, fmt.Errorf("--%s needs --%s 2 or more and --%s", flagExtractAugmentSeed, flagExtractViews, flagExtractAugment)
	}
	return views, aug, nil
}

// extractAdvice adds to an Extract error the flag that gets past it (the
// library names none).
func extractAdvice(err error, skipBad bool) error {
	switch {
	case errors.Is(err, extractor.ErrMismatch) && strings.Contains(err.Error(), " view"):
		return fmt.Errorf("%w; give the --%s, --%s and --%s it was made with to resume or reuse it, --%s rebuilds it, or choose another --%s folder",
			err, flagExtractViews, flagExtractAugment, flagExtractAugmentSeed, flagExtractForce, flagExtractCache)
	case errors.Is(err, extractor.ErrMismatch) || errors.Is(err, extractor.ErrUnreadableCache):
		return fmt.Errorf("%w; --%s rebuilds it, or choose another --%s folder", err, flagExtractForce, flagExtractCache)
	case !skipBad && errors.As(err, new(*dataset.DecodeError)):
		return fmt.Errorf("%w (--%s leaves such images out)", err, flagExtractSkipBad)
	}
	return err
}
