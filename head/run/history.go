package run

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// HistoryFile is the name of the per-epoch log inside a run directory.
const HistoryFile = "history.csv"

// historyColumns are the columns of history.csv, exactly those of Keras'
// CSVLogger for a model compiled with metrics=["accuracy"] and fitted with
// validation data: "epoch" first, then the logs' keys in sorted order.
// Unlike CSVLogger's, the epochs count from 1.
var historyColumns = []string{"epoch", "accuracy", "loss", "val_accuracy", "val_loss"}

// holdoutColumns are those of a history with a holdout, in the same sorted
// order, as CSVLogger would write them had the holdout been logged.
var holdoutColumns = []string{"epoch", "accuracy", "holdout_accuracy", "holdout_loss", "loss", "val_accuracy", "val_loss"}

// writeHistoryCSV writes h in the CSVLogger format, with the holdout's
// columns when h has them.
func writeHistoryCSV(w io.Writer, h head.History) error {
	cw := csv.NewWriter(w)
	cols := historyColumns
	if h.HasHoldout() {
		cols = holdoutColumns
	}
	if err := cw.Write(cols); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, e := range h {
		rec := []string{strconv.Itoa(e.Epoch), f(e.Accuracy), f(e.Loss), f(e.ValAccuracy), f(e.ValLoss)}
		if h.HasHoldout() {
			rec = []string{strconv.Itoa(e.Epoch), f(e.Accuracy), f(e.HoldoutAccuracy), f(e.HoldoutLoss), f(e.Loss), f(e.ValAccuracy), f(e.ValLoss)}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteHistory writes h to path (history.csv) atomically.
func WriteHistory(path string, h head.History) error {
	if err := fsutil.WriteWith(path, 0o644, func(w io.Writer) error { return writeHistoryCSV(w, h) }); err != nil {
		return fmt.Errorf("run: history: %w", err)
	}
	return nil
}

// readHistoryCSV parses a history in the CSVLogger format. Columns may come
// in any order (Keras files with more metrics are accepted); the five of
// historyColumns are required, and the holdout's two are read when there. A history whose first epoch is 0 (Keras',
// or tlearn's before epochs were counted from 1) is renumbered from 1.
func readHistoryCSV(r io.Reader) (head.History, error) {
	cr := csv.NewReader(r)
	names, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty history")
		}
		return nil, err
	}
	col := make([]int, len(historyColumns))
	for i, name := range historyColumns {
		col[i] = slices.Index(names, name)
		if col[i] < 0 {
			return nil, fmt.Errorf("history has no %q column (columns %v)", name, names)
		}
	}
	holdAcc, holdLoss := slices.Index(names, "holdout_accuracy"), slices.Index(names, "holdout_loss")
	if (holdAcc < 0) != (holdLoss < 0) {
		return nil, fmt.Errorf("history has only one of the columns holdout_accuracy and holdout_loss (columns %v)", names)
	}
	var h head.History
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			if len(h) > 0 && h[0].Epoch == 0 {
				for i := range h {
					h[i].Epoch++
				}
			}
			return h, nil
		}
		if err != nil {
			return nil, err
		}
		var e head.Epoch
		if e.Epoch, err = strconv.Atoi(rec[col[0]]); err != nil {
			return nil, fmt.Errorf("history line %d: epoch: %w", len(h)+2, err)
		}
		for i, dst := range []*float64{&e.Accuracy, &e.Loss, &e.ValAccuracy, &e.ValLoss} {
			if *dst, err = strconv.ParseFloat(rec[col[i+1]], 64); err != nil {
				return nil, fmt.Errorf("history line %d: %s: %w", len(h)+2, historyColumns[i+1], err)
			}
		}
		if holdAcc >= 0 {
			e.HasHoldout = true
			if e.HoldoutAccuracy, err = strconv.ParseFloat(rec[holdAcc], 64); err != nil {
				return nil, fmt.Errorf("history line %d: holdout_accuracy: %w", len(h)+2, err)
			}
			if e.HoldoutLoss, err = strconv.ParseFloat(rec[holdLoss], 64); err != nil {
				return nil, fmt.Errorf("history line %d: holdout_loss: %w", len(h)+2, err)
			}
		}
		h = append(h, e)
	}
}

// ReadHistory reads a history.csv file.
func ReadHistory(path string) (head.History, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer f.Close()
	h, err := readHistoryCSV(f)
	if err != nil {
		return nil, fmt.Errorf("run: %s: %w", path, err)
	}
	return h, nil
}
