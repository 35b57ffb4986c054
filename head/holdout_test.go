package head

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestCarveHoldout: the carve is stratified (each class gives
// round(fraction × its rows), at least one, leaving one), seeded (the same
// seed gives the same rows, another seed others), disjoint and complete,
// sorted, and one class's rows do not depend on another class's.
func TestCarveHoldout(t *testing.T) {
	t.Parallel()
	classes := []string{"cat", "dog", "eel"}
	var y []int32
	for c, n := range []int{40, 10, 3} {
		for range n {
			y = append(y, int32(c))
		}
	}
	// Interleave the classes so that a carve by position would show.
	slices.Reverse(y[:25])
	train, hold, err := CarveHoldout(y, classes, 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	counts := ClassCounts(y, hold, len(classes))
	if want := []int{10, 3, 1}; !slices.Equal(counts, want) {
		t.Errorf("holdout per class %v, want %v (round(0.25·n), at least 1)", counts, want)
	}
	if !slices.IsSorted(train) || !slices.IsSorted(hold) {
		t.Error("the rows are not in ascending order")
	}
	all := slices.Concat(train, hold)
	slices.Sort(all)
	for i, r := range all {
		if int(r) != i {
			t.Fatalf("train and holdout are not every row once: %v", all)
		}
	}
	again, hold2, _ := CarveHoldout(y, classes, 0.25, 1)
	if !slices.Equal(train, again) || !slices.Equal(hold, hold2) {
		t.Error("the same seed carved other rows")
	}
	if _, other, _ := CarveHoldout(y, classes, 0.25, 2); slices.Equal(hold, other) {
		t.Error("seeds 1 and 2 carved the same rows")
	}
	// Dropping the eels changes nothing for the cats and dogs.
	_, fewer, err := CarveHoldout(y[:50], classes, 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.DeleteFunc(slices.Clone(hold), func(r int32) bool { return r >= 50 }); !slices.Equal(fewer, want) {
		t.Errorf("without class eel the holdout is %v, want %v", fewer, want)
	}
}

func TestCarveHoldoutErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc     string
		y        []int32
		fraction float64
	}{
		{"fraction 0", []int32{0, 0, 1, 1}, 0},
		{"fraction 1", []int32{0, 0, 1, 1}, 1},
		{"a class of one row", []int32{0, 0, 1}, 0.5},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, _, err := CarveHoldout(tc.y, []string{"a", "b"}, tc.fraction, 0); !errors.Is(err, ErrHoldout) {
				t.Errorf("error %v, want one wrapping ErrHoldout", err)
			}
		})
	}
}

// TestTrainHoldout: Train steps only on the rows the carve keeps, records
// the holdout's figures and says that it selected on them.
func TestTrainHoldout(t *testing.T) {
	t.Parallel()
	train, val := blobs(100, 6, 2, 2, 1), blobs(40, 6, 2, 2, 2)
	s := Settings{Hidden: 8, LR: 1e-2, Epochs: 3, Holdout: 0.2, HoldoutSeed: 5, SaveBest: true}
	res, err := Train(context.Background(), train, val, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.HoldoutN != 20 || res.SelectedOn != SelectedOnHoldout || !res.History.HasHoldout() {
		t.Fatalf("holdout of %d rows, selected on %q, history with a holdout: %v", res.HoldoutN, res.SelectedOn, res.History.HasHoldout())
	}
	if res.Best != res.History.Best() || res.WeightsEpoch != res.Best+1 {
		t.Errorf("best %d, History.Best %d, weights of epoch %d", res.Best, res.History.Best(), res.WeightsEpoch)
	}
	// The held-out rows carry no weight: changing them does not change
	// what is learnt from the others, only what is measured.
	_, hold, _ := CarveHoldout(train.Y, train.Classes, 0.2, 5)
	changed := &Data{X: slices.Clone(train.X), Y: train.Y, Classes: train.Classes}
	for _, r := range hold {
		clear(changed.Row(int(r)))
	}
	res2, err := Train(context.Background(), changed, val, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.History {
		a, b := res.History[i], res2.History[i]
		if a.Loss != b.Loss || a.ValAccuracy != b.ValAccuracy {
			t.Errorf("epoch %d: trained differently with other holdout rows: %+v vs %+v", i+1, a, b)
		}
	}
	if s.SelectsOnValidation() {
		t.Error("a run with a holdout says it selects on the validation set")
	}
	if !(Settings{SaveBest: true}).SelectsOnValidation() || !(Settings{EarlyStop: 2}).SelectsOnValidation() || (Settings{}).SelectsOnValidation() {
		t.Error("SelectsOnValidation is wrong without a holdout")
	}
}
