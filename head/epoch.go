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
	Seconds     float64 `json:"seconds,omitempty"` // wall time of the epoch, validation included; not in history.csv
}

// History is the list of epochs run, in order.
type History []Epoch

// Best returns the index of the epoch with the highest validation accuracy
// (the earliest among equals), or -1 for an empty history.
func (h History) Best() int {
	best := -1
	for i, e := range h {
		if best < 0 || e.ValAccuracy > h[best].ValAccuracy {
			best = i
		}
	}
	return best
}

// Line is the epoch's one-line summary for a log, the same for every
// trainer, with the epoch number padded to the width of epochs (the number
// planned):
//
//	epoch  3/50  loss 0.4213  accuracy 0.8512  val_loss 0.3921  val_accuracy 0.8610  1.2 s
func (e Epoch) Line(epochs int) string {
	width := len(strconv.Itoa(epochs))
	return fmt.Sprintf("epoch %*d/%d  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f  %s",
		width, e.Epoch, epochs, e.Loss, e.Accuracy, e.ValLoss, e.ValAccuracy, fsutil.FormatSeconds(e.Seconds))
}
