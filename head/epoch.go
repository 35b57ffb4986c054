package head

// Epoch is one epoch's metrics. Accuracy and Loss are the running means over
// the epoch's training batches (with dropout active, as Keras reports them);
// the validation figures are computed after the epoch's last step.
type Epoch struct {
	Epoch       int     `json:"epoch"` // counted from 0, like Keras' CSVLogger
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
