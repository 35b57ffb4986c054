package experiment

import (
	"slices"
	"testing"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/progress"
)

// Each epoch's steps are one phase counted in examples, and its line
// counts epochs from 1.
func TestEpochReporter(t *testing.T) {
	t.Parallel()
	var rec progress.Recorder
	p := newEpochReporter(&rec, 10, 4, 2)
	for e := range 2 {
		for step := 1; step <= 3; step++ {
			p.Step(e, step, 3)
		}
		p.EpochDone(head.Epoch{Epoch: e, Loss: 1, Accuracy: 0.5, ValLoss: 2, ValAccuracy: 0.25, Seconds: 0.5}, 2)
	}
	want := []string{
		"start epoch 1/2 10 0", "add 4", "add 4", "add 2", "finish",
		"log epoch 1/2  loss 1.0000  accuracy 0.5000  val_loss 2.0000  val_accuracy 0.2500  500 ms",
		"start epoch 2/2 10 0", "add 4", "add 4", "add 2", "finish",
		"log epoch 2/2  loss 1.0000  accuracy 0.5000  val_loss 2.0000  val_accuracy 0.2500  500 ms",
	}
	if !slices.Equal(rec.Events, want) {
		t.Errorf("events:\n%q\nwant\n%q", rec.Events, want)
	}
}
