package run

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// Metrics is metrics.json: the last and the best epoch (by the accuracy on
// the set SelectedOn names), and an evaluation of the saved weights on the
// validation set.
type Metrics struct {
	Final head.Epoch `json:"final"`
	Best  head.Epoch `json:"best"`
	// SelectedOn names the set whose accuracy picked Best (and the saved
	// weights, with save_best or early_stop): head.SelectedOnHoldout or
	// head.SelectedOnValidation. Empty in files of a tlearn before it was
	// recorded, which always selected on the validation set.
	SelectedOn   string       `json:"selected_on,omitempty"`
	EpochsRun    int          `json:"epochs_run"`
	Seconds      float64      `json:"seconds"`
	WeightsEpoch int          `json:"weights_epoch"` // the epoch whose weights were saved, counted from 1
	EarlyStopped bool         `json:"early_stopped"`
	Validation   *head.Report `json:"validation,omitempty"`
}

// NewMetrics summarises a history; weightsEpoch is the epoch the saved
// weights come from, validation their evaluation on the validation set
// (may be nil). It panics on an empty history.
func NewMetrics(h head.History, weightsEpoch int, seconds float64, earlyStopped bool, validation *head.Report) *Metrics {
	return &Metrics{
		Final: h[len(h)-1], Best: h[h.Best()], SelectedOn: selectedOn(h), EpochsRun: len(h), Seconds: seconds,
		WeightsEpoch: weightsEpoch, EarlyStopped: earlyStopped, Validation: validation,
	}
}

// ReadMetrics reads DIR/metrics.json. The epochs of a file written by
// tlearn before epochs were counted from 1 are shifted: there the final
// epoch's number is one less than the number of epochs run.
func ReadMetrics(dir string) (*Metrics, error) {
	p := filepath.Join(dir, MetricsFile)
	b, err := fsutil.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	var m Metrics
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("run: %s: %w", p, err)
	}
	if m.EpochsRun > 0 && m.Final.Epoch == m.EpochsRun-1 {
		m.Final.Epoch++
		m.Best.Epoch++
		m.WeightsEpoch++
	}
	return &m, nil
}

func selectedOn(h head.History) string {
	if h.HasHoldout() {
		return head.SelectedOnHoldout
	}
	return head.SelectedOnValidation
}
