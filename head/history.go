package head

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// HistoryFile is the name of the per-epoch log inside a run directory.
const HistoryFile = "history.csv"

// HistoryColumns are the columns of history.csv, exactly those of Keras'
// CSVLogger for a model compiled with metrics=["accuracy"] and fitted with
// validation data: "epoch" first, then the logs' keys in sorted order.
var HistoryColumns = []string{"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}

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

// WriteCSV writes h in the CSVLogger format.
func (h History) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(HistoryColumns); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, e := range h {
		if err := cw.Write([]string{strconv.Itoa(e.Epoch), f(e.Accuracy), f(e.Loss), f(e.ValAccuracy), f(e.ValLoss)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteHistory writes path atomically.
func WriteHistory(path string, h History) error {
	if err := fsutil.WriteWith(path, 0o644, h.WriteCSV); err != nil {
		return fmt.Errorf("head: history: %w", err)
	}
	return nil
}

// ReadHistoryCSV parses a history in the CSVLogger format. Columns may come
// in any order (Keras files with more metrics are accepted); the five of
// HistoryColumns are required.
func ReadHistoryCSV(r io.Reader) (History, error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty history")
		}
		return nil, err
	}
	col := make([]int, len(HistoryColumns))
	for i, name := range HistoryColumns {
		col[i] = slices.Index(head, name)
		if col[i] < 0 {
			return nil, fmt.Errorf("history has no %q column (columns %v)", name, head)
		}
	}
	var h History
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return h, nil
		}
		if err != nil {
			return nil, err
		}
		var e Epoch
		if e.Epoch, err = strconv.Atoi(rec[col[0]]); err != nil {
			return nil, fmt.Errorf("history line %d: epoch: %w", len(h)+2, err)
		}
		for i, dst := range []*float64{&e.Accuracy, &e.Loss, &e.ValAccuracy, &e.ValLoss} {
			if *dst, err = strconv.ParseFloat(rec[col[i+1]], 64); err != nil {
				return nil, fmt.Errorf("history line %d: %s: %w", len(h)+2, HistoryColumns[i+1], err)
			}
		}
		h = append(h, e)
	}
}

// ReadHistory reads a history.csv file.
func ReadHistory(path string) (History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	defer f.Close()
	h, err := ReadHistoryCSV(f)
	if err != nil {
		return nil, fmt.Errorf("head: %s: %w", path, err)
	}
	return h, nil
}
