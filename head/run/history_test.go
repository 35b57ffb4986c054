package run

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/head"
)

func TestHistoryCSV(t *testing.T) {
	t.Parallel()
	h := head.History{
		{Epoch: 1, Accuracy: 0.5, Loss: 1.25, ValAccuracy: 0.6, ValLoss: 1e-5, Seconds: 3},
		{Epoch: 2, Accuracy: 0.75, Loss: 0.5, ValAccuracy: 0.8, ValLoss: 0.4},
	}
	var b bytes.Buffer
	if err := writeHistoryCSV(&b, h); err != nil {
		t.Fatal(err)
	}
	// The columns of Keras' CSVLogger, epoch from 1.
	want := "epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,1.25,0.6,1e-05\n2,0.75,0.5,0.8,0.4\n"
	if b.String() != want {
		t.Fatalf("history.csv:\n%s\nwant:\n%s", b.String(), want)
	}
	got, err := readHistoryCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	h[0].Seconds = 0
	for i := range h {
		if got[i] != h[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], h[i])
		}
	}
	if h.Best() != 1 {
		t.Errorf("best %d, want 1", h.Best())
	}
}

func TestReadHistoryKeras(t *testing.T) {
	t.Parallel()
	// A Keras CSVLogger file with an extra metric column.
	in := "epoch,accuracy,loss,lr,val_accuracy,val_loss\n0,0.25,2.0,1e-4,0.5,1.5\n"
	h, err := readHistoryCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0] != (head.Epoch{Epoch: 1, Accuracy: 0.25, Loss: 2, ValAccuracy: 0.5, ValLoss: 1.5}) {
		t.Errorf("read %+v", h)
	}
	for _, bad := range []string{"", "epoch,loss\n", "epoch,accuracy,loss,val_accuracy,val_loss\nx,1,1,1,1\n"} {
		if _, err := readHistoryCSV(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := ReadHistory(filepath.Join(t.TempDir(), "none.csv")); err == nil || !strings.Contains(err.Error(), "none.csv") {
		t.Errorf("error %v does not name the file", err)
	}
}

// TestHistoryCSVHoldout: a history with a holdout gains its two columns
// (in CSVLogger's sorted order), reads back with them, and its best epoch
// is the holdout's, not the validation set's.
func TestHistoryCSVHoldout(t *testing.T) {
	t.Parallel()
	h := head.History{
		{Epoch: 1, Accuracy: 0.5, Loss: 1.25, ValAccuracy: 0.9, ValLoss: 0.5, HasHoldout: true, HoldoutAccuracy: 0.5, HoldoutLoss: 1},
		{Epoch: 2, Accuracy: 0.75, Loss: 0.5, ValAccuracy: 0.8, ValLoss: 0.4, HasHoldout: true, HoldoutAccuracy: 0.7, HoldoutLoss: 0.75},
	}
	var b bytes.Buffer
	if err := writeHistoryCSV(&b, h); err != nil {
		t.Fatal(err)
	}
	want := "epoch,accuracy,holdout_accuracy,holdout_loss,loss,val_accuracy,val_loss\n1,0.5,0.5,1,1.25,0.9,0.5\n2,0.75,0.7,0.75,0.5,0.8,0.4\n"
	if b.String() != want {
		t.Fatalf("history.csv:\n%s\nwant:\n%s", b.String(), want)
	}
	got, err := readHistoryCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range h {
		if got[i] != h[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], h[i])
		}
	}
	if got.Best() != 1 {
		t.Errorf("best %d, want 1 (the holdout's; the validation set's is 0)", got.Best())
	}
	m := NewMetrics(got, 2, 1, false, nil)
	if m.SelectedOn != head.SelectedOnHoldout || m.Best.Epoch != 2 {
		t.Errorf("metrics: selected on %q, best epoch %d; want the holdout's epoch 2", m.SelectedOn, m.Best.Epoch)
	}
	if _, err := readHistoryCSV(strings.NewReader("epoch,accuracy,holdout_accuracy,loss,val_accuracy,val_loss\n1,1,1,1,1,1\n")); err == nil {
		t.Error("a history with holdout_accuracy but no holdout_loss was read")
	}
}
