package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagFTModel       = "model"
	flagFTTrain       = "train"
	flagFTVal         = "val"
	flagFTOut         = "out"
	flagFTEpochs      = "epochs"
	flagFTLR          = "lr"
	flagFTBlock5LR    = "block5-lr"
	flagFTBatch       = "batch"
	flagFTHidden      = "hidden"
	flagFTNoHidden    = "no-hidden"
	flagFTDropout     = "dropout"
	flagFTSeed        = "seed"
	flagFTInitHead    = "init-head"
	flagFTOptimizer   = "optimizer"
	flagFTMomentum    = "momentum"
	flagFTWeightDecay = "weight-decay"
	flagFTL2          = "l2"
	flagFTSmoothing   = "label-smoothing"
	flagFTClassWeight = "class-weights"
	flagFTFreeze      = "freeze-block5"
	flagFTNoShuffle   = "no-shuffle"
	flagFTEarlyStop   = "early-stop"
	flagFTSaveBest    = "save-best"
	flagFTForce       = "force"
)

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:  "finetune",
		Usage: "train VGG16's block5 and the head on cached block4_pool maps",
		Description: `Trains block5_conv1..3 of the prepared VGG model together with the dense head
(GAP → Dense(hidden, ReLU) → Dropout → Dense(classes)) on the block4_pool maps
that ` + "`tlearn extract --maps`" + ` cached, with a training graph that tlearn generates
and ONNX Runtime runs (CPU, or CUDA with a GPU build of the library). Adam by
default, as the Keras tutorial; --init-head starts from a head trained with
` + "`tlearn train`" + ` (two-stage fine-tuning, usually with a smaller --lr).

The run directory has the same files as ` + "`tlearn train`" + `'s (settings.json with
mode "finetune", weights.safetensors with block5's tensors added, history.csv,
metrics.json, curves.png, confusion.png); ` + "`tlearn export --run`" + ` builds a classifier
with the fine-tuned block5. After every epoch the state is saved next to the run
directory (.RUN.finetune-checkpoint.safetensors): Ctrl-C and the same command
again resumes from the last finished epoch.

--holdout F picks the best epoch and stops early on a stratified, seeded
fraction F of the --train maps, set aside, rather than on --val (see
` + "`tlearn train --help`" + `).

Example:
   tlearn extract --model model --data images --val 0.2 --cache cache --maps
   tlearn train --train cache/train --val cache/val --out run-head
   tlearn finetune --model model --train cache/train --val cache/val --out run-ft \
       --epochs 10 --lr 1e-5 --init-head run-head`,
		Flags: withCommon(append([]cli.Flag{
			&cli.StringFlag{Name: flagFTModel, Usage: "prepared VGG model `DIR` the caches were extracted with", Required: true},
			&cli.StringFlag{Name: flagFTTrain, Usage: "training cache `DIR` with maps (extract --maps)", Required: true},
			&cli.StringFlag{Name: flagFTVal, Usage: "validation cache `DIR` with maps", Required: true},
			&cli.StringFlag{Name: flagFTOut, Usage: "run `DIR` to write", Required: true},
			&cli.IntFlag{Name: flagFTEpochs, Value: finetune.DefaultEpochs, Usage: "passes over the training maps"},
			&cli.Float64Flag{Name: flagFTLR, Value: head.DefaultLR, Usage: "learning rate (of the head, and of block5 unless --block5-lr)"},
			&cli.Float64Flag{Name: flagFTBlock5LR, Usage: "block5's learning rate", DefaultText: "--lr"},
			&cli.IntFlag{Name: flagFTBatch, Value: head.DefaultBatch, Usage: "maps per step"},
			&cli.IntFlag{Name: flagFTHidden, Value: head.DefaultHidden, Usage: "hidden units of the head (the --init-head's size when given)"},
			&cli.BoolFlag{Name: flagFTNoHidden, Usage: "no hidden layer (nor dropout)"},
			&cli.Float64Flag{Name: flagFTDropout, Value: head.DefaultDropout, Usage: "dropout after the hidden layer (0: none)"},
			&cli.Uint64Flag{Name: flagFTSeed, Usage: "seed of the head's initial weights, the shuffling and the dropout masks"},
			&cli.StringFlag{Name: flagFTInitHead, Usage: "start from the head of this `RUN` directory (tlearn train)"},
			&cli.StringFlag{Name: flagFTOptimizer, Value: finetune.OptimizerAdam, Usage: "adam or sgd"},
			&cli.Float64Flag{Name: flagFTMomentum, Value: finetune.DefaultMomentum, Usage: "SGD momentum (0: plain SGD)"},
			&cli.Float64Flag{Name: flagFTWeightDecay, Usage: "decoupled weight decay (AdamW-style: θ ← (1−lr·wd)·θ, every parameter)"},
			&cli.Float64Flag{Name: flagFTL2, Usage: "coupled L2 on the kernels (added to the gradient, as tlearn train's --l2)"},
			&cli.Float64Flag{Name: flagFTSmoothing, Usage: "label smoothing (0..1)"},
			scheduleFlag(),
			&cli.StringFlag{Name: flagFTClassWeight, Value: "none", Usage: "none or balanced"},
			&cli.BoolFlag{Name: flagFTFreeze, Usage: "keep block5 fixed (trains only the head, on the graph)"},
			&cli.BoolFlag{Name: flagFTNoShuffle, Usage: "keep the cache's order in every epoch (the tutorial's shuffle=False)"},
			&cli.IntFlag{Name: flagFTEarlyStop, Usage: "stop after this many epochs without a better validation (with --holdout: holdout) accuracy (0: off)"},
			&cli.BoolFlag{Name: flagFTSaveBest, Usage: "keep the weights of the epoch with the best validation (with --holdout: holdout) accuracy"},
			&cli.BoolFlag{Name: flagFTForce, Usage: "replace an existing run directory (only a tlearn run folder)"},
			ttaFlag("validate"),
		}, holdoutFlags()...)...),
		Action: onInterrupt("the checkpoint of the last finished epoch is kept and the same command resumes from it", finetuneAction),
	}
}

func finetuneAction(c *cli.Context) error {
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	s, err := finetuneSettings(c)
	if err != nil {
		return usageError{err}
	}
	if err := readHoldout(c, &s.Settings); err != nil {
		return err
	}
	s.Runtime = opts
	if _, err := initORT(c); err != nil {
		return err
	}
	p := newReporter(stderr(c))
	defer p.Finish()
	if note := selectionNote(s.Settings, false); note != "" {
		p.Log(note)
	}
	_, err = experiment.FineTune(c.Context, experiment.FineTuneSettings{
		Model: c.String(flagFTModel), Train: c.String(flagFTTrain), Val: c.String(flagFTVal), Out: c.String(flagFTOut),
		InitHead: c.String(flagFTInitHead), Tuning: s, Overwrite: c.Bool(flagFTForce), TTA: c.Bool(flagTTA),
	}, p)
	switch {
	case errors.Is(err, head.ErrHoldout):
		return holdoutError(err)
	case errors.Is(err, rundir.ErrExists):
		return usageError{fmt.Errorf("%w (choose another --%s, or --%s to replace it)", err, flagFTOut, flagFTForce)}
	case errors.Is(err, fsutil.ErrUnwritable):
		return fmt.Errorf("%w (choose another --%s)", err, flagFTOut)
	case errors.Is(err, finetune.ErrOtherRun):
		return fmt.Errorf("%w (--%s starts the run over)", err, flagFTForce)
	case errors.Is(err, experiment.ErrNotVGG):
		return fmt.Errorf("%w: fine-tuning needs a VGG16 (prepare one with `tlearn models prepare`); train a head on its features with `tlearn train` instead", err)
	case errors.As(err, new(*experiment.NoMapsError)):
		return withMapsAdvice(err)
	}
	return outputError(err, flagFTOut)
}

// finetuneSettings reads the training flags.
func finetuneSettings(c *cli.Context) (finetune.Settings, error) {
	cw, err := head.ParseClassWeighting(c.String(flagFTClassWeight))
	if err != nil {
		return finetune.Settings{}, err
	}
	hidden := 0
	if c.IsSet(flagFTHidden) {
		hidden = c.Int(flagFTHidden)
	}
	s := finetune.Settings{
		Settings: head.Settings{
			// Hidden 0 is the --init-head's size, else the default.
			Hidden: hidden, NoHidden: c.Bool(flagFTNoHidden),
			Dropout: c.Float64(flagFTDropout), NoDropout: c.IsSet(flagFTDropout) && c.Float64(flagFTDropout) == 0,
			LR: c.Float64(flagFTLR), Batch: c.Int(flagFTBatch), Epochs: c.Int(flagFTEpochs),
			L2: c.Float64(flagFTL2), LabelSmoothing: c.Float64(flagFTSmoothing), ClassWeights: cw,
			Seed: c.Uint64(flagFTSeed), NoShuffle: c.Bool(flagFTNoShuffle),
			EarlyStop: c.Int(flagFTEarlyStop), SaveBest: c.Bool(flagFTSaveBest),
		},
		Block5LR:     c.Float64(flagFTBlock5LR),
		FreezeBlock5: c.Bool(flagFTFreeze),
		Optimizer:    strings.ToLower(c.String(flagFTOptimizer)),
		Momentum:     c.Float64(flagFTMomentum),
		NoMomentum:   c.IsSet(flagFTMomentum) && c.Float64(flagFTMomentum) == 0,
		WeightDecay:  c.Float64(flagFTWeightDecay),
	}
	if s.Schedule, err = head.ParseSchedule(c.String(flagLRSchedule)); err != nil {
		return s, fmt.Errorf("--%s: %w", flagLRSchedule, err)
	}
	// In head.Settings 0 means "default"; on the command line an explicit 0
	// is a mistake (or, for --hidden, a request that --no-hidden states).
	for _, f := range []string{flagFTEpochs, flagFTBatch, flagFTHidden} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return s, fmt.Errorf("--%s must be positive", f)
		}
	}
	if c.IsSet(flagFTLR) && c.Float64(flagFTLR) <= 0 {
		return s, fmt.Errorf("--%s must be positive", flagFTLR)
	}
	if c.IsSet(flagFTBlock5LR) && c.Float64(flagFTBlock5LR) <= 0 {
		return s, fmt.Errorf("--%s must be positive (use --%s to keep block5 fixed)", flagFTBlock5LR, flagFTFreeze)
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}
