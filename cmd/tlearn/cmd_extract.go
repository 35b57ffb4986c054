package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
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

Example:
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --maps
   tlearn extract --model model --data photos --cache photos.cache --size 160 --interpolation bicubic
   tlearn extract --model model --data images --val 0.2 --cache cache-aug --views 4 --augment flip,crop`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagExtractModel, Usage: "prepared model `DIR` (tlearn models prepare)", Required: true},
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
	views, aug, err := viewFlags(c)
	if err != nil {
		return usageError{err}
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
	}, p)
	if errors.Is(err, experiment.ErrCacheLayout) {
		if c.IsSet(flagExtractVal) {
			return fmt.Errorf("%w; drop --%s to use it, or choose another --%s folder", err, flagExtractVal, flagExtractCache)
		}
		return fmt.Errorf("%w; add the same --%s and --%s to resume it, or choose another --%s folder", err, flagExtractVal, flagExtractSeed, flagExtractCache)
	}
	return outputError(extractAdvice(err, c.Bool(flagExtractSkipBad)), flagExtractCache)
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
