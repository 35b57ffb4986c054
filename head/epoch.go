package head

import (
	"fmt"
	"strconv"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// Epoch is one epoch's metrics. Accuracy and Loss are the running means over
// the epoch's training batches (with dropout active, as Keras reports them);
// the validation figures are computed after the epoch's last step.
type Epoch struct {
	Epoch       int     `json:"epoch"` // counted from 1, in files and on the console alike
	Accuracy    float64 `json:"accuracy"`
	Loss        float64 `json:"loss"`
	ValAccuracy float64 `json:"val_accuracy"`
	ValLoss     float64 `json:"val_loss"`
	// HasHoldout says that the epoch was also measured on the holdout
	// (Settings.Holdout), and that the holdout, not the validation set,
	// ranks it.
	HasHoldout      bool    `json:"has_holdout,omitempty"`
	HoldoutAccuracy float64 `json:"holdout_accuracy,omitempty"`
	HoldoutLoss     float64 `json:"holdout_loss,omitempty"`
	Seconds         float64 `json:"seconds,omitempty"` // wall time of the epoch, validation included; not in history.csv
}

// SelectionAccuracy is the accuracy that ranks the epoch: on the holdout
// when it has one, else on the validation set.
func (e Epoch) SelectionAccuracy() float64 {
	if e.HasHoldout {
		return e.HoldoutAccuracy
	}
	return e.ValAccuracy
}

// SelectionLoss is the mean loss on the set of SelectionAccuracy.
func (e Epoch) SelectionLoss() float64 {
	if e.HasHoldout {
		return e.HoldoutLoss
	}
	return e.ValLoss
}

// History is the list of epochs run, in order.
type History []Epoch

// Best returns the index of the epoch with the highest SelectionAccuracy
// (the earliest among equals), or -1 for an empty history.
func (h History) Best() int {
	best := -1
	for i, e := range h {
		if best < 0 || e.SelectionAccuracy() > h[best].SelectionAccuracy() {
			best = i
		}
	}
	return best
}

// HasHoldout reports whether the epochs were measured on a holdout.
func (h History) HasHoldout() bool { return len(h) > 0 && h[0].HasHoldout }

// Line is the epoch's one-line summary for a log, the same for every
// trainer, with the epoch number padded to the width of epochs (the number
// planned), and the holdout's figures before the validation set's when it
// has them:
//
//	epoch  3/50  loss 0.4213  accuracy 0.8512  val_loss 0.3921  val_accuracy 0.8610  1.2 s
//	epoch  3/50  loss 0.4213  accuracy 0.8512  holdout_loss 0.4010  holdout_accuracy 0.8550  val_loss 0.3921  val_accuracy 0.8610  1.2 s
func (e Epoch) Line(epochs int) string {
	width := len(strconv.Itoa(epochs))
	holdout := ""
	if e.HasHoldout {
		holdout = fmt.Sprintf("  holdout_loss %.4f  holdout_accuracy %.4f", e.HoldoutLoss, e.HoldoutAccuracy)
	}
	return fmt.Sprintf("epoch %*d/%d  loss %.4f  accuracy %.4f%s  val_loss %.4f  val_accuracy %.4f  %s",
		width, e.Epoch, epochs, e.Loss, e.Accuracy, holdout, e.ValLoss, e.ValAccuracy, fsutil.FormatSeconds(e.Seconds))
}
