package main

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/models/quantize"
)

const (
	flagCompareModel          = "model"
	flagCompareTrainData      = "train-data"
	flagCompareValData        = "val-data"
	flagCompareVal            = "val"
	flagCompareSeed           = "seed"
	flagCompareOut            = "out"
	flagCompareSize           = "size"
	flagCompareEpochs         = "epochs"
	flagCompareFineTuneEpochs = "finetune-epochs"
	flagCompareBatch          = "batch"
	flagCompareLR             = "lr"
	flagCompareNoShuffle      = "no-shuffle"
	flagCompareForce          = "force"
	flagCompareNoBest         = "no-best"
	flagCompareBestAugment    = "best-augment"
	flagCompareInt8           = "int8"
	flagCompareCalibrate      = "calibrate-images"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:  "compare",
		Usage: "run the reference experiment: head-only training versus block5 fine-tuning, and tlearn's recommended recipe, in one command",
		Description: `Runs the Keras tutorial's whole experiment (VGG16 transfer learning, head-only
versus block5 fine-tuned) and, beside it, tlearn's recommended recipe ("tlearn
best"), and writes a report:

  1. one extraction pass over the images: pooled features and block4_pool maps,
     resized nearest as the tutorial (REPORT/cache/train, REPORT/cache/val);
  2. head-only training of the dense head (REPORT/head);
  3. block5 + head fine-tuning from a fresh head (REPORT/finetune);
  4. export of both as ONNX classifiers (REPORT/*/classifier.onnx);
  5. tlearn best, the recommended recipe: its own extraction (REPORT/cache-best),
     block5 fine-tuned with a new head (REPORT/finetune-best; a recipe of two
     stages first trains REPORT/head-best and starts from it) on every
     training image, keeping the last epoch, where the cosine schedule ends
     (every choice of the recipe was made on images apart from the
     validation images, which only report), and the export of the fine-tuned run
     (REPORT/finetune-best/classifier.onnx, the plain model: test-time
     augmentation changes evaluation only); --no-best skips it. The recipe:
       ` + strings.ReplaceAll(experiment.Recommended.String(), "; ", ";\n       ") + `;
  6. with --int8, float32 and int8 side by side: the model quantized as
     models quantize does (REPORT/model-int8, calibrated on --calibrate-images
     images sampled with --seed from --train-data, at --size; with --val,
     validation images may be among them), the same images
     extracted with it (REPORT/cache-int8), and the tutorial's two rows again
     on its features and on its int8 maps (REPORT/head-int8,
     REPORT/finetune-int8, and their classifiers), each beside its float32
     twin, with both extractions' times, images/s and their ratio; tlearn
     best stays float32;
  7. REPORT/report.md (the table below, every stage's exact command and time, and
     every deviation from the tutorial) and REPORT/curves.png (validation
     accuracy and loss per epoch of every mode).

Each stage is an ordinary tlearn command, listed in report.md so that any of them
can be rerun by hand. Re-running compare after an interruption reuses the
finished stages (an interrupted extraction or fine-tuning resumes where it
stopped; --int8 added to a finished comparison runs only the int8 stages);
--force redoes everything.

Defaults follow the tutorial — Adam with one learning rate 1e-4 for all trainable
weights, batch 32, 50 head epochs — except for shuffled batches (the tutorial's
generator uses shuffle=False) and 10 fine-tuning epochs instead of 50 (its
curve plateaus by 10). tlearn best takes --size, --batch and --seed from these
flags (and --epochs and --finetune-epochs where its recipe sets none), and its
learning rates, schedule and shuffling from its recipe, not from --lr and
--no-shuffle.

Example:
   tlearn compare --model model --train-data cifar/train --val-data cifar/test --out report
   tlearn compare --model model --train-data images --val 0.2 --size 32 --out report
   tlearn compare --model model --train-data cifar/train --val-data cifar/test --out report --int8`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagCompareModel, Usage: "prepared VGG model `DIR` (tlearn models prepare)", Required: true},
			&cli.StringFlag{Name: flagCompareTrainData, Usage: "training images: class folders under `DIR`", Required: true},
			&cli.StringFlag{Name: flagCompareValData, Usage: "validation images: class folders under `DIR`"},
			&cli.Float64Flag{Name: flagCompareVal, Usage: "instead of --val-data: hold out this `FRACTION` of --train-data (stratified)"},
			&cli.Uint64Flag{Name: flagCompareSeed, Usage: "`SEED` of the split, initial weights, shuffling and dropout (and of --int8's calibration sample)"},
			&cli.StringFlag{Name: flagCompareOut, Usage: "report `DIR`", Required: true},
			&cli.IntFlag{Name: flagCompareSize, Usage: "input side in pixels", DefaultText: "the model's, 224 for VGG16"},
			&cli.IntFlag{Name: flagCompareEpochs, Value: head.DefaultEpochs, Usage: "head-only training epochs"},
			&cli.IntFlag{Name: flagCompareFineTuneEpochs, Value: finetune.DefaultEpochs, Usage: "fine-tuning epochs"},
			&cli.IntFlag{Name: flagCompareBatch, Value: head.DefaultBatch, Usage: "mini-batch size of both modes"},
			&cli.Float64Flag{Name: flagCompareLR, Value: head.DefaultLR, Usage: "Adam's learning rate of both modes"},
			&cli.BoolFlag{Name: flagCompareNoShuffle, Usage: "class-ordered batches, as the tutorial's generator (shuffle=False)"},
			&cli.BoolFlag{Name: flagCompareForce, Usage: "redo every stage"},
			&cli.BoolFlag{Name: flagCompareNoBest, Usage: "leave out the \"tlearn best\" row: the tutorial's two rows alone"},
			&cli.StringFlag{Name: flagCompareBestAugment, Usage: "the \"tlearn best\" row's augmentation `LIST` instead of the recipe's (crop=0.8 where a mirrored image is another class, as digits)",
				DefaultText: experiment.Recommended.Augment},
			&cli.BoolFlag{Name: flagCompareInt8, Usage: "also quantize the model to int8 and add the tutorial's rows on its features and maps, with both extractions' speeds (tlearn best stays float32)"},
			&cli.IntFlag{Name: flagCompareCalibrate, Value: quantize.DefaultImages, Usage: "with --int8: calibration images, `N` sampled from --train-data"},
		),
		Action: onInterrupt("finished stages are kept and the same command resumes from the unfinished one", compareAction),
	}
}

func compareAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("compare takes no arguments, got %q", c.Args().Slice())}
	}
	s, err := compareSettings(c)
	if err != nil {
		return err
	}
	if t := c.Int(flagThreads); t > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	log := stderr(c)
	p := &stagePrinter{newReporter(log)}
	defer p.Finish()
	res, err := experiment.Compare(c.Context, s, p)
	switch {
	case errors.Is(err, experiment.ErrNotVGG):
		return usageError{err}
	case errors.Is(err, quantize.ErrQuantized):
		return usageError{fmt.Errorf("%w (with --%s, --%s takes the float32 folder that `tlearn models prepare` wrote)", err, flagCompareInt8, flagCompareModel)}
	case errors.Is(err, fsutil.ErrUnwritable):
		return fmt.Errorf("%w (choose another --%s)", err, flagCompareOut)
	case err != nil:
		return outputError(err, flagCompareOut)
	}
	if err := res.WriteTable(c.App.Writer); err != nil {
		return err
	}
	fmt.Fprintf(log, "\ncompare: report %s, curves %s\n", res.Report, res.Curves)
	return nil
}

// compareSettings reads the flags, refusing values that the defaults would
// silently replace.
func compareSettings(c *cli.Context) (experiment.CompareSettings, error) {
	s := experiment.CompareSettings{
		Model: c.String(flagCompareModel), TrainData: c.String(flagCompareTrainData),
		ValData: c.String(flagCompareValData), Val: c.Float64(flagCompareVal), Out: c.String(flagCompareOut),
		Size: c.Int(flagCompareSize), Epochs: c.Int(flagCompareEpochs), FineTuneEpochs: c.Int(flagCompareFineTuneEpochs),
		Batch: c.Int(flagCompareBatch), LR: c.Float64(flagCompareLR), Seed: c.Uint64(flagCompareSeed),
		NoShuffle: c.Bool(flagCompareNoShuffle), Force: c.Bool(flagCompareForce), NoBest: c.Bool(flagCompareNoBest),
		Int8: c.Bool(flagCompareInt8),
	}
	switch n := c.Int(flagCompareCalibrate); {
	case c.IsSet(flagCompareCalibrate) && !s.Int8:
		return s, usageError{fmt.Errorf("compare: --%s calibrates the int8 model of --%s; give both or neither", flagCompareCalibrate, flagCompareInt8)}
	case n <= 0:
		return s, usageError{fmt.Errorf("compare: --%s must be positive, got %d", flagCompareCalibrate, n)}
	case s.Int8:
		s.CalibrationImages = n
	}
	if c.IsSet(flagCompareBestAugment) {
		r := experiment.Recommended
		r.Augment = c.String(flagCompareBestAugment)
		if _, err := dataset.ParseAugment(r.Augment); err != nil || r.Augment == "" {
			return s, usageError{fmt.Errorf("compare: --%s %q: %v", flagCompareBestAugment, r.Augment, cmp.Or(err, errors.New("want at least one augmentation")))}
		}
		s.Recipe = &r
	}
	switch {
	case s.ValData == "" && s.Val == 0:
		return s, usageError{fmt.Errorf("compare: give --%s DIR or --%s FRACTION", flagCompareValData, flagCompareVal)}
	case s.ValData != "" && s.Val != 0:
		return s, usageError{fmt.Errorf("compare: give --%s or --%s, not both", flagCompareValData, flagCompareVal)}
	case s.Val < 0 || s.Val >= 1:
		return s, usageError{fmt.Errorf("compare: --%s %v: want a fraction between 0 and 1", flagCompareVal, s.Val)}
	case s.Size < 0:
		return s, usageError{fmt.Errorf("compare: --%s must be positive, got %d", flagCompareSize, s.Size)}
	}
	for _, f := range []string{flagCompareEpochs, flagCompareFineTuneEpochs, flagCompareBatch} {
		if c.Int(f) <= 0 {
			return s, usageError{fmt.Errorf("compare: --%s must be positive, got %d", f, c.Int(f))}
		}
	}
	if !(s.LR > 0) {
		return s, usageError{fmt.Errorf("compare: --%s must be positive", flagCompareLR)}
	}
	rt, err := sessionOptions(c)
	s.Runtime = rt
	return s, err
}

// stagePrinter prints compare's stages, with the tlearn command lines
// that do the same, between the stages' own reports.
type stagePrinter struct{ *countBar }

func (p *stagePrinter) Stage(e experiment.StageEvent) {
	if e.Reused {
		p.Log(fmt.Sprintf("compare: [%d/%d] %s: reusing the finished stage (%s)", e.Index, e.Count, e.Name, e.Dir))
		return
	}
	p.Log(fmt.Sprintf("compare: [%d/%d] %s", e.Index, e.Count, e.Name))
	for _, line := range e.CommandLines() {
		p.Log("  $ " + line)
	}
}
