package main

import (
	"errors"
	"fmt"
	"strconv"

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

Example:
   tlearn extract --model model --data images --val 0.2 --seed 1 --cache cache --maps
   tlearn extract --model model --data photos --cache photos.cache --size 160 --interpolation bicubic`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagExtractModel, Usage: "prepared model `DIR` (tlearn models prepare)", Required: true},
			&cli.StringFlag{Name: flagExtractData, Usage: "dataset `DIR` with one sub-folder of images per class", Required: true},
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
	}, p)
	if errors.Is(err, experiment.ErrCacheLayout) {
		if c.IsSet(flagExtractVal) {
			return fmt.Errorf("%w; drop --%s to use it, or choose another --%s folder", err, flagExtractVal, flagExtractCache)
		}
		return fmt.Errorf("%w; add the same --%s and --%s to resume it, or choose another --%s folder", err, flagExtractVal, flagExtractSeed, flagExtractCache)
	}
	return outputError(extractAdvice(err, c.Bool(flagExtractSkipBad)), flagExtractCache)
}

// extractAdvice adds to an Extract error the flag that gets past it (the
// library names none).
func extractAdvice(err error, skipBad bool) error {
	switch {
	case errors.Is(err, extractor.ErrMismatch) || errors.Is(err, extractor.ErrUnreadableCache):
		return fmt.Errorf("%w; --%s rebuilds it, or choose another --%s folder", err, flagExtractForce, flagExtractCache)
	case !skipBad && errors.As(err, new(*dataset.DecodeError)):
		return fmt.Errorf("%w (--%s leaves such images out)", err, flagExtractSkipBad)
	}
	return err
}
