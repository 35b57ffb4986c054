package finetune

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
)

// TestEvaluate: the report of a fine-tuned run's weights on its
// validation maps is FineTune's own validation report, whatever the batch
// size FineTune validated with.
func TestEvaluate(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	rt := ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}
	for _, tc := range []struct {
		desc string
		s    head.Settings
	}{
		{"hidden and dropout", head.Settings{Hidden: 8, LR: 1e-2, Batch: 8, Epochs: 2, Seed: 1}},
		{"no hidden", head.Settings{NoHidden: true, LR: 1e-2, Batch: 5, Epochs: 2, Seed: 2}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			fx := newFTFixture(4, 4, 4, 3, 40, 24)
			res, err := FineTune(context.Background(), fx.train, fx.val, fx.start, Settings{Settings: tc.s, Runtime: rt}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Evaluate(context.Background(), res.Weights, fx.val, 0, rt)
			if err != nil {
				t.Fatal(err)
			}
			want := res.Validation
			if got.N != want.N || got.Accuracy != want.Accuracy || got.TopKAccuracy != want.TopKAccuracy || !tol.Close(got.Loss, want.Loss, 0, 1e-5) {
				t.Errorf("report n=%d acc=%g top-k=%g loss=%g, FineTune's n=%d acc=%g top-k=%g loss=%g",
					got.N, got.Accuracy, got.TopKAccuracy, got.Loss, want.N, want.Accuracy, want.TopKAccuracy, want.Loss)
			}
			if !slices.EqualFunc(got.Confusion, want.Confusion, slices.Equal) {
				t.Errorf("confusion %v, FineTune's %v", got.Confusion, want.Confusion)
			}
			if !slices.Equal(got.PerClass, want.PerClass) {
				t.Errorf("per class %+v, FineTune's %+v", got.PerClass, want.PerClass)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	rt := ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}
	fx := newFTFixture(5, 4, 4, 3, 16, 8)
	other := newFTFixture(5, 6, 4, 3, 16, 8)
	s := Settings{Settings: head.Settings{Hidden: 4}}.Resolve()
	w := withGlorotHead(fx.start, fx.train, s)
	headOnly := w.Clone()
	delete(headOnly.Tensors, models.Block5WeightName(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		desc string
		ctx  context.Context
		w    *head.Weights
		d    *MapsData
		want string
	}{
		{"head-only weights", context.Background(), headOnly, fx.val, "no block5_conv1.weight"},
		{"block5 only", context.Background(), fx.start, fx.val, "no head"},
		{"maps of another backbone", context.Background(), w, other.val, "maps of another backbone"},
		{"no maps", context.Background(), w, &MapsData{Shape: [3]int{4, 4, 4}, Classes: fx.val.Classes, Y: []int32{0}}, "map values"},
		// Deterministic since ortlib.RunWithContext checks the context
		// before each run (TestRunWithContext).
		{"cancelled", ctx, w, fx.val, context.Canceled.Error()},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Evaluate(tc.ctx, tc.w, tc.d, 0, rt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.ctx.Err() != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
		})
	}
}
