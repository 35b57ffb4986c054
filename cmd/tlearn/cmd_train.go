package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagTrainTrain       = "train"
	flagTrainVal         = "val"
	flagTrainOut         = "out"
	flagTrainHidden      = "hidden"
	flagTrainDropout     = "dropout"
	flagTrainLR          = "lr"
	flagTrainBatch       = "batch"
	flagTrainEpochs      = "epochs"
	flagTrainL2          = "l2"
	flagTrainSmoothing   = "label-smoothing"
	flagLRSchedule       = "lr-schedule"
	flagTrainClassWeight = "class-weight"
	flagTrainSeed        = "seed"
	flagTrainNoShuffle   = "no-shuffle"
	flagTrainEarlyStop   = "early-stop"
	flagTrainSaveBest    = "save-best"
	flagTrainSweep       = "sweep"
	flagTrainForce       = "force"
	flagTrainAuto        = "auto"
	flagTrainEMA         = "ema"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train the dense head on a feature cache (seconds per epoch), or a sweep of heads",
		Description: `Trains the reference head (Dense(1024, ReLU) → Dropout(0.5) → Dense(K) →
softmax, Adam with lr 1e-4, batch 32, 50 epochs) on the features of --train,
validating on --val after every epoch, and writes the run directory --out:
settings.json, weights.safetensors, history.csv (Keras CSVLogger columns),
metrics.json, curves.png and confusion.png. The run directory appears only when
it is complete; Ctrl-C leaves nothing behind.

--train may also name the folder that ` + "`extract --val`" + ` wrote (with train/ and val/
inside) when --val is left out. Both caches must come from the same model and
extraction settings.

--holdout F sets aside a stratified, seeded fraction F of the --train images
(--holdout-seed; settings.json records both and the count) on which the best
epoch, --early-stop, --save-best and a sweep's ranking go; --val is then only
reported, so its accuracy is not optimistic. Without it they select on --val,
which the command notes once.

--sweep KEY=V1,V2,... (repeatable) trains every combination of the listed
values from the one cache into --out/<name>/ and prints a table ranked by the
best validation (with --holdout: holdout) accuracy; it is also written to
--out/sweep.csv. Keys: hidden, dropout, lr, batch, epochs, l2, label-smoothing,
ema, class-weight, seed. Runs that already exist with the same settings are
reused, so an interrupted sweep resumes.

--ema DECAY keeps an exponential moving average of the weights (updated after
every step; 0.999 averages over about a thousand steps) and validates, selects
and saves the average instead of the last step's weights: it evens out the
epoch-to-epoch noise of a constant learning rate.

--auto chooses the head for you: 16 candidates of learning rate, hidden size,
dropout and L2, each trained with early stopping (--early-stop, default 10) for
up to --epochs on a holdout (--holdout, default 0.1) of --train, are ranked by
holdout accuracy (then lower holdout loss, then the simpler); the winner is
trained again on all of --train for the epochs its holdout chose, and written
to --out, whose settings.json records the search. It prints the table of what
it tried and why the winner won; --val is only reported. The search is kept in
a hidden folder beside --out until the run is written: an interrupted --auto
resumes.

Example:
   tlearn train --train cache/train --val cache/val --out run-head
   tlearn train --train cache --out run-small --hidden 256 --epochs 20 --early-stop 5 --holdout 0.1
   tlearn train --train cache --out sweep --sweep lr=1e-3,1e-4 --sweep dropout=0.3,0.5
   tlearn train --train cache/train --val cache/val --out run-auto --auto`,
		Flags: withCommon(append([]cli.Flag{
			&cli.StringFlag{Name: flagTrainTrain, Usage: "training feature cache `DIR` (or a folder with train/ and val/)", Required: true},
			&cli.StringFlag{Name: flagTrainVal, Usage: "validation feature cache `DIR`"},
			&cli.StringFlag{Name: flagTrainOut, Usage: "run directory `DIR` to write (for --sweep: the folder of the runs)", Required: true},
			&cli.IntFlag{Name: flagTrainHidden, Value: head.DefaultHidden, Usage: "hidden ReLU units; 0 = plain softmax regression"},
			&cli.Float64Flag{Name: flagTrainDropout, Value: head.DefaultDropout, Usage: "dropout rate after the hidden layer; 0 = none"},
			&cli.Float64Flag{Name: flagTrainLR, Value: head.DefaultLR, Usage: "Adam's learning rate"},
			&cli.IntFlag{Name: flagTrainBatch, Value: head.DefaultBatch, Usage: "mini-batch size"},
			&cli.IntFlag{Name: flagTrainEpochs, Value: head.DefaultEpochs, Usage: "passes over the training set"},
			&cli.Float64Flag{Name: flagTrainL2, Usage: "L2 weight decay on the two kernels, added to the gradient (PyTorch's Adam weight_decay)"},
			&cli.Float64Flag{Name: flagTrainSmoothing, Usage: "label smoothing (0..1) of the cross-entropy targets"},
			scheduleFlag(),
			&cli.Float64Flag{Name: flagTrainEMA, Usage: "validate, select and save an exponential moving average of the weights with this `DECAY` per step (e.g. 0.999); 0 = off"},
			&cli.StringFlag{Name: flagTrainClassWeight, Value: "none", Usage: "`MODE` of class weights in the training loss: none, or balanced (class c weighs N/(K·n_c))"},
			&cli.Uint64Flag{Name: flagTrainSeed, Usage: "`SEED` of the initial weights, shuffling and dropout"},
			&cli.BoolFlag{Name: flagTrainNoShuffle, Usage: "keep the cache's class-by-class order in every epoch (the Keras tutorial's shuffle=False)"},
			&cli.IntFlag{Name: flagTrainEarlyStop, Usage: "stop after `N` epochs without a better validation (with --holdout: holdout) accuracy and keep the best epoch's weights; 0 = off"},
			&cli.BoolFlag{Name: flagTrainSaveBest, Usage: "save the weights of the epoch with the best validation (with --holdout: holdout) accuracy, not the last"},
			&cli.GenericFlag{Name: flagTrainSweep, Value: &sweepFlag{}, Usage: "train one run per value `KEY=V1,V2,...` (repeatable: every combination)"},
			&cli.BoolFlag{Name: flagTrainForce, Usage: "replace existing run directories (only tlearn run folders)"},
			&cli.BoolFlag{Name: flagTrainAuto, Usage: "search --lr, --hidden, --dropout, --l2 and the epochs on a holdout of --train, then retrain the winner on all of it"},
			ttaFlag("validate"),
		}, holdoutFlags()...)...),
		Action: onInterrupt("the unfinished run was not written (finished runs of a sweep or an --auto search are kept and reused); the same command trains it again from the start", trainAction),
	}
}

// sweepFlag collects repeated --sweep values without urfave/cli's comma
// splitting, which would cut "lr=1e-3,1e-4" into "lr=1e-3" and "1e-4".
type sweepFlag struct{ values []string }

func (f *sweepFlag) Set(v string) error { f.values = append(f.values, v); return nil }
func (f *sweepFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(f.values, " ")
}

// trainSettings reads the training flags.
func trainSettings(c *cli.Context) (head.Settings, error) {
	s := head.Settings{
		Hidden: c.Int(flagTrainHidden), NoHidden: c.Int(flagTrainHidden) == 0,
		Dropout: c.Float64(flagTrainDropout), NoDropout: c.Float64(flagTrainDropout) == 0,
		LR: c.Float64(flagTrainLR), Batch: c.Int(flagTrainBatch), Epochs: c.Int(flagTrainEpochs),
		L2: c.Float64(flagTrainL2), LabelSmoothing: c.Float64(flagTrainSmoothing),
		Seed: c.Uint64(flagTrainSeed), NoShuffle: c.Bool(flagTrainNoShuffle),
		EarlyStop: c.Int(flagTrainEarlyStop), SaveBest: c.Bool(flagTrainSaveBest),
		EMA: c.Float64(flagTrainEMA),
	}
	cw, err := head.ParseClassWeighting(c.String(flagTrainClassWeight))
	if err != nil {
		return s, usageError{err}
	}
	s.ClassWeights = cw
	if s.Schedule, err = head.ParseSchedule(c.String(flagLRSchedule)); err != nil {
		return s, usageError{fmt.Errorf("--%s: %w", flagLRSchedule, err)}
	}
	if err := readHoldout(c, &s); err != nil {
		return s, err
	}
	// An explicit 0 would otherwise silently mean "the default".
	if c.Float64(flagTrainLR) <= 0 {
		return s, usageError{fmt.Errorf("--%s must be positive, got %g", flagTrainLR, c.Float64(flagTrainLR))}
	}
	for _, f := range []string{flagTrainBatch, flagTrainEpochs} {
		if c.Int(f) <= 0 {
			return s, usageError{fmt.Errorf("--%s must be positive, got %d", f, c.Int(f))}
		}
	}
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

func trainAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("train takes no arguments (got %q)", c.Args().First())}
	}
	s, err := trainSettings(c)
	if err != nil {
		return err
	}
	axes, err := experiment.ParseSweep(c.Generic(flagTrainSweep).(*sweepFlag).values)
	if err != nil {
		return usageError{fmt.Errorf("--%s: %w", flagTrainSweep, err)}
	}
	if t := c.Int(flagThreads); t > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
	} else if t < 0 {
		return usageError{fmt.Errorf("--%s must be 0 or more, got %d", flagThreads, t)}
	}
	w := stderr(c)
	p := newReporter(w)
	defer p.Finish()
	if note := selectionNote(s, len(axes) > 0); note != "" && !c.Bool(flagTrainAuto) {
		p.Log(note)
	}
	if c.Bool(flagTrainAuto) {
		return autoAction(c, s, len(axes) > 0, p)
	}
	if len(axes) == 0 {
		_, err := experiment.Train(c.Context, experiment.TrainSettings{
			Train: c.String(flagTrainTrain), Val: c.String(flagTrainVal), Out: c.String(flagTrainOut),
			Head: s, Overwrite: c.Bool(flagTrainForce), TTA: c.Bool(flagTTA),
		}, p)
		return trainError(err)
	}
	res, err := experiment.Sweep(c.Context, experiment.SweepSettings{
		Train: c.String(flagTrainTrain), Val: c.String(flagTrainVal), Out: c.String(flagTrainOut),
		Base: s, Axes: axes, Overwrite: c.Bool(flagTrainForce), TTA: c.Bool(flagTTA),
	}, p)
	if err != nil {
		return trainError(err)
	}
	if err := res.WriteTable(c.App.Writer); err != nil {
		return err
	}
	best := res.Runs[0]
	if best.Metrics.Best.HasHoldout {
		fmt.Fprintf(w, "sweep: best %s (holdout_accuracy %.4f, val_accuracy %.4f); table in %s\n", best.Name, best.Metrics.Best.HoldoutAccuracy, best.Metrics.Best.ValAccuracy, res.CSV)
	} else {
		fmt.Fprintf(w, "sweep: best %s (val_accuracy %.4f); table in %s\n", best.Name, best.Metrics.Best.ValAccuracy, res.CSV)
	}
	return nil
}

// trainError adds to the library's errors the flags that fix them.
func trainError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, head.ErrHoldout):
		return holdoutError(err)
	case errors.Is(err, experiment.ErrNoValCache):
		return usageError{fmt.Errorf("--%s is missing (%w)", flagTrainVal, err)}
	case errors.Is(err, experiment.ErrSettings):
		return usageError{err}
	case errors.Is(err, rundir.ErrExists):
		return fmt.Errorf("%w (choose another --%s, or --%s to replace it)", err, flagTrainOut, flagTrainForce)
	case errors.Is(err, fsutil.ErrUnwritable):
		return fmt.Errorf("%w (choose another --%s)", err, flagTrainOut)
	}
	return outputError(err, flagTrainOut)
}
