package experiment

import (
	"fmt"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/head"
)

// Recipe is a way to train a VGG classifier end to end: how the images are
// cached, how the head is trained on the cache, and how block5 is then
// fine-tuned from that head. Both training stages keep the weights of the
// epoch chosen on a holdout carved out of the training images (never on
// the validation images, which are only reported). What a Recipe leaves
// out is the caller's (compare's): the input size, the epochs of each
// stage, the batch size and the seed (of the initial weights, shuffling,
// dropout and the augmented views).
type Recipe struct {
	// Interpolation is the resize filter of the extraction.
	Interpolation dataset.Interpolation
	// Views is the number of cached views per image (view 0 plain, the
	// others augmented with Augment); 1 is the plain cache.
	Views int
	// Augment is the augmentation of views 1..Views-1, as extract's
	// --augment takes it ("flip,crop"); "" with one view.
	Augment string
	// Holdout is the fraction of the training images, per class, set aside
	// to choose the epoch on, in both stages (the same images: the carve
	// depends on the labels, the fraction and the holdout seed alone, so
	// fine-tuning selects on images the head never trained on).
	Holdout float64
	// SaveBest keeps the chosen epoch's weights instead of the last's.
	SaveBest bool
	// HeadLR is Adam's learning rate of the head-only stage.
	HeadLR float64
	// HeadEpochs is the most epochs of the head-only stage (the holdout
	// chooses the one kept); 0 means the caller's.
	HeadEpochs int
	// HeadEMA is the decay of the moving average of the head's weights
	// (train --ema) in the head-only stage; 0: none.
	HeadEMA float64
	// FineTuneLR is the head's learning rate while block5 is fine-tuned,
	// from the head-only stage's weights; Block5LR is block5's.
	FineTuneLR, Block5LR float64
	// FreshHead fine-tunes block5 with a new head instead of the head-only
	// stage's (which then does not run): one stage, not two.
	FreshHead bool
	// FineTuneEpochs is the most epochs of fine-tuning (the holdout
	// chooses the one kept); 0 means the caller's.
	FineTuneEpochs int
	// FineTuneSchedule is the learning-rate schedule of fine-tuning.
	FineTuneSchedule head.Schedule
	// FineTuneLastEpoch fine-tunes on every training image, without a
	// holdout, and keeps the last epoch, where the schedule ends, instead
	// of the epoch that the holdout chooses.
	FineTuneLastEpoch bool
	// TTA validates (and selects on the holdout) on the mean probabilities
	// of an image's views. It changes evaluation only: the exported
	// classifier sees one plain view per image.
	TTA bool
}

// Recommended is tlearn's recommended recipe: compare's "tlearn best" row,
// and, in its head-only fields, the recipe for a head alone.
// BENCHMARKS.md ("The recommended recipe") measures it on real data. Every
// choice in it was made on images apart from those it is reported on: on a
// holdout of the training images, the head's rate, epochs and moving
// average; for fine-tuning, a new head over the head-only stage's (two
// stages), 4 views over none and 8, and a cosine schedule over a constant
// rate. Keeping the last fine-tuning epoch, on every training image,
// instead of the holdout's epoch was fixed beforehand and checked on
// images 2000–2999 of each class; 30 epochs over 20 (and over label
// smoothing or a higher head rate) were chosen on images 1000–1999, and
// reported on 2000–2999, which chose nothing.
var Recommended = Recipe{
	Interpolation:     dataset.Bilinear,
	Views:             4,
	Augment:           "flip,crop=0.8",
	Holdout:           0.1,
	SaveBest:          true,
	HeadLR:            3e-4,
	HeadEpochs:        120,
	HeadEMA:           0.999,
	FineTuneLR:        1e-4,
	Block5LR:          1e-4,
	FreshHead:         true,
	FineTuneEpochs:    30,
	FineTuneSchedule:  head.ScheduleCosine,
	FineTuneLastEpoch: true,
	TTA:               true,
}

// String summarises r in tlearn's flags, e.g. "bilinear, --views 4
// --augment flip,crop=0.8; finetune (a new head) --lr 0.0001 --block5-lr
// 0.0001 --epochs 30 --lr-schedule cosine --tta (every training image,
// the last epoch kept)".
func (r Recipe) String() string {
	ext := string(r.Interpolation)
	if r.Views > 1 {
		ext += fmt.Sprintf(", --views %d --augment %s", r.Views, r.Augment)
	}
	sel := fmt.Sprintf("--holdout %g", r.Holdout)
	if r.SaveBest {
		sel += " --save-best"
	}
	tta := ""
	if r.TTA {
		tta = " --tta"
	}
	ft := fmt.Sprintf("--lr %g --block5-lr %g", r.FineTuneLR, r.Block5LR)
	if r.FineTuneEpochs > 0 {
		ft += fmt.Sprintf(" --epochs %d", r.FineTuneEpochs)
	}
	if r.FineTuneSchedule != head.ScheduleConstant {
		ft += " --lr-schedule " + r.FineTuneSchedule.String()
	}
	if r.FineTuneLastEpoch {
		ft += tta + " (every training image, the last epoch kept)"
	} else {
		ft += " " + sel + tta
	}
	if r.FreshHead {
		return fmt.Sprintf("%s; finetune (a new head) %s", ext, ft)
	}
	return fmt.Sprintf("%s; head %s; finetune --init-head (the head's run) %s", ext, r.HeadFlags(), ft)
}

// HeadFlags are the train flags of the recipe's head-only stage, which
// is also the recipe for a head alone: "--lr 0.0003 --epochs 120 --ema
// 0.999 --holdout 0.1 --save-best --tta".
func (r Recipe) HeadFlags() string {
	f := fmt.Sprintf("--lr %g", r.HeadLR)
	if r.HeadEpochs > 0 {
		f += fmt.Sprintf(" --epochs %d", r.HeadEpochs)
	}
	if r.HeadEMA > 0 {
		f += fmt.Sprintf(" --ema %g", r.HeadEMA)
	}
	f += fmt.Sprintf(" --holdout %g", r.Holdout)
	if r.SaveBest {
		f += " --save-best"
	}
	if r.TTA {
		f += " --tta"
	}
	return f
}

// validate checks r and returns its parsed augmentation.
func (r Recipe) validate() (dataset.Augment, error) {
	aug, err := dataset.ParseAugment(r.Augment)
	if err != nil {
		return aug, fmt.Errorf("%w: recipe: %w", ErrSettings, err)
	}
	if _, err := dataset.ParseInterpolation(string(r.Interpolation)); err != nil || r.Interpolation == "" {
		return aug, fmt.Errorf("%w: recipe: interpolation %q, want one of %v", ErrSettings, r.Interpolation, dataset.Interpolations)
	}
	switch {
	case r.Views < 1 || r.Views > dataset.MaxViews:
		return aug, fmt.Errorf("%w: recipe: %d views, want 1 to %d", ErrSettings, r.Views, dataset.MaxViews)
	case (r.Views > 1) != (r.Augment != ""):
		return aug, fmt.Errorf("%w: recipe: augmented views need both more than one view and an augmentation", ErrSettings)
	case r.TTA && r.Views < 2:
		return aug, fmt.Errorf("%w: recipe: test-time augmentation needs augmented views", ErrSettings)
	case !(r.Holdout > 0 && r.Holdout < 1):
		return aug, fmt.Errorf("%w: recipe: holdout %v, want between 0 and 1: the recipe selects on it, never on the validation images", ErrSettings, r.Holdout)
	case r.HeadEpochs < 0 || r.FineTuneEpochs < 0:
		return aug, fmt.Errorf("%w: recipe: %d head and %d fine-tuning epochs, want 0 (the caller's) or more", ErrSettings, r.HeadEpochs, r.FineTuneEpochs)
	case r.FineTuneSchedule != head.ScheduleConstant && r.FineTuneSchedule != head.ScheduleCosine:
		return aug, fmt.Errorf("%w: recipe: unknown learning-rate schedule %q", ErrSettings, string(r.FineTuneSchedule))
	case !(r.HeadLR > 0) || !(r.FineTuneLR > 0) || !(r.Block5LR > 0):
		return aug, fmt.Errorf("%w: recipe: learning rates must be positive", ErrSettings)
	case !(r.HeadEMA >= 0 && r.HeadEMA < 1):
		return aug, fmt.Errorf("%w: recipe: head EMA decay %v, want 0 (none) or a decay below 1", ErrSettings, r.HeadEMA)
	}
	return aug, nil
}
