package head

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/progress"
)

// scripted is a Model whose validation accuracy per epoch is given; its
// "parameters" are the number of the epoch they come from.
type scripted struct {
	valAcc   []float64
	holdAcc  []float64 // per epoch, for Measure
	measured []int32   // the rows Measure was last given
	loss     float64   // per example
	epoch    int       // epochs validated
	params   int
	snapshot int
	calls    []string
}

func (m *scripted) Step(_ context.Context, rows []int32) (float64, int, error) {
	return m.loss * float64(len(rows)), len(rows), nil
}

func (m *scripted) Validate(context.Context) (float64, float64, error) {
	m.epoch++
	m.params = m.epoch
	return 1, m.valAcc[m.epoch-1], nil
}

func (m *scripted) Measure(_ context.Context, rows []int32) (float64, float64, error) {
	m.measured = rows
	return 2, m.holdAcc[m.epoch-1], nil
}

func (m *scripted) Snapshot() error {
	m.snapshot = m.params
	m.calls = append(m.calls, "snapshot")
	return nil
}

func (m *scripted) Restore() error {
	m.params = m.snapshot
	m.calls = append(m.calls, "restore")
	return nil
}

func (m *scripted) EndEpoch(st *EpochState) error {
	m.calls = append(m.calls, "end")
	return nil
}

func TestRunEpochs(t *testing.T) {
	t.Parallel()
	acc := []float64{0.5, 0.7, 0.6, 0.7, 0.65, 0.9}
	for _, tc := range []struct {
		desc      string
		s         Settings
		ran       int  // epochs in the history
		stopped   bool // early stopping
		weights   int  // the index RunEpochs returns
		restored  bool
		snapshots int
	}{
		{"all epochs, last weights", Settings{Epochs: 6}, 6, false, 5, false, 0},
		{"save best", Settings{Epochs: 5, SaveBest: true}, 5, false, 1, true, 2},
		{"early stop", Settings{Epochs: 6, EarlyStop: 2}, 4, true, 1, true, 2},
		{"patience ends with the last epoch", Settings{Epochs: 4, EarlyStop: 2}, 4, false, 1, true, 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := tc.s
			s.Batch = 4
			m := &scripted{valAcc: acc, loss: 0.5}
			st := NewEpochState(10, 1)
			rec := &progress.Recorder{}
			w, err := RunEpochs(context.Background(), m, st, s, rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.History) != tc.ran || st.Stopped != tc.stopped || w != tc.weights {
				t.Fatalf("ran %d epochs (stopped %v), weights of %d; want %d (%v), %d", len(st.History), st.Stopped, w, tc.ran, tc.stopped, tc.weights)
			}
			if restored := slices.Contains(m.calls, "restore"); restored != tc.restored || (restored && m.params != w+1) {
				t.Errorf("restore called: %v, parameters of epoch %d; want %v and %d", restored, m.params, tc.restored, w+1)
			}
			if n := strings.Count(strings.Join(m.calls, " "), "snapshot"); n != tc.snapshots {
				t.Errorf("%d snapshots, want %d", n, tc.snapshots)
			}
			if got := len(rec.Logs()); got != tc.ran || rec.Added != 10*tc.ran {
				t.Errorf("%d epoch lines and %d images reported, want %d and %d", got, rec.Added, tc.ran, 10*tc.ran)
			}
			for i, e := range st.History {
				if e.Epoch != i+1 || e.Loss != 0.5 || e.Accuracy != 1 {
					t.Errorf("epoch %d recorded as %+v", i, e)
				}
			}
		})
	}
}

// TestRunEpochsResumes: a loop continued from its state takes the same
// steps, in the same order, as one that ran through.
func TestRunEpochsResumes(t *testing.T) {
	t.Parallel()
	train, val := blobs(60, 6, 3, 1, 1), blobs(30, 6, 3, 1, 2)
	s := Settings{Hidden: 8, LR: 1e-2, Batch: 7, Epochs: 5, Seed: 4, EarlyStop: 3}.Resolve()
	whole := newHeadModel(train, val, allRows(train.Len()), s)
	defer whole.net.close()
	want := NewEpochState(train.Len(), s.Seed)
	if _, err := RunEpochs(context.Background(), whole, want, s, nil); err != nil {
		t.Fatal(err)
	}
	parts := newHeadModel(train, val, allRows(train.Len()), s)
	defer parts.net.close()
	got := NewEpochState(train.Len(), s.Seed)
	first := s
	first.Epochs = 2
	if _, err := RunEpochs(context.Background(), parts, got, first, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := RunEpochs(context.Background(), parts, got, s, nil); err != nil {
		t.Fatal(err)
	}
	if len(got.History) != len(want.History) || got.Best != want.Best || !slices.Equal(got.Order, want.Order) {
		t.Fatalf("resumed: %d epochs, best %d; whole: %d, best %d", len(got.History), got.Best, len(want.History), want.Best)
	}
	for i := range want.History {
		a, b := got.History[i], want.History[i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("epoch %d: %+v, whole run %+v", i, a, b)
		}
	}
}

func TestRunEpochsErrors(t *testing.T) {
	t.Parallel()
	s := Settings{Epochs: 3, Batch: 4}
	_, err := RunEpochs(context.Background(), &scripted{valAcc: []float64{0, 0, 0}, loss: math.Inf(1)}, NewEpochState(8, 0), s, nil)
	var de *DivergedError
	if !errors.As(err, &de) || de.Epoch != 1 || !math.IsInf(de.Loss, 1) {
		t.Errorf("infinite loss: %v, want a *DivergedError", err)
	}
	if err == nil || strings.Contains(err.Error(), "--") {
		t.Errorf("error %q tells the user a flag", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &progress.Recorder{}
	_, err = RunEpochs(ctx, &scripted{valAcc: []float64{0, 0, 0}}, NewEpochState(8, 0), s, rec)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if ev := rec.Events; len(ev) == 0 || ev[len(ev)-1] != "finish" {
		t.Errorf("the phase was left open: %q", ev)
	}
}

func allRows(n int) []int32 {
	rows := make([]int32, n)
	for i := range rows {
		rows[i] = int32(i)
	}
	return rows
}

// TestRunEpochsSelectsOnHoldout: where the validation set and the holdout
// disagree on the best epoch, the kept weights, early stopping and
// History.Best follow the holdout, and the validation figures are still
// recorded for every epoch.
func TestRunEpochsSelectsOnHoldout(t *testing.T) {
	t.Parallel()
	val := []float64{0.5, 0.9, 0.6, 0.6, 0.6, 0.6}  // best: epoch 2
	hold := []float64{0.5, 0.6, 0.8, 0.7, 0.7, 0.7} // best: epoch 3
	for _, tc := range []struct {
		desc    string
		s       Settings
		ran     int
		weights int // index
	}{
		{"save best", Settings{Epochs: 6, SaveBest: true}, 6, 2},
		{"early stop", Settings{Epochs: 6, EarlyStop: 2}, 5, 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := tc.s
			s.Batch, s.Holdout, s.HoldoutSeed = 4, 0.2, 7
			y := []int32{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}
			st, err := NewEpochStateFor(y, []string{"a", "b"}, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Order) != 8 || len(st.Holdout) != 2 {
				t.Fatalf("order %v, holdout %v: want 8 and 2 rows", st.Order, st.Holdout)
			}
			m := &scripted{valAcc: val, holdAcc: hold, loss: 0.5}
			rec := &progress.Recorder{}
			w, err := RunEpochs(context.Background(), m, st, s, rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.History) != tc.ran || w != tc.weights || st.Best != tc.weights || st.History.Best() != tc.weights || m.params != w+1 {
				t.Fatalf("ran %d epochs, weights of index %d (best %d, History.Best %d, params of epoch %d); want %d epochs, index %d",
					len(st.History), w, st.Best, st.History.Best(), m.params, tc.ran, tc.weights)
			}
			if !slices.Equal(m.measured, st.Holdout) {
				t.Errorf("measured rows %v, want the holdout %v", m.measured, st.Holdout)
			}
			for i, e := range st.History {
				if !e.HasHoldout || e.HoldoutAccuracy != hold[i] || e.ValAccuracy != val[i] || e.HoldoutLoss != 2 {
					t.Errorf("epoch %d recorded as %+v", i+1, e)
				}
			}
			if rec.Added != 8*tc.ran {
				t.Errorf("%d images stepped on, want %d (the holdout's are not)", rec.Added, 8*tc.ran)
			}
			if l := rec.Logs()[0]; !strings.Contains(l, "holdout_accuracy 0.5000") || !strings.Contains(l, "val_accuracy 0.5000") {
				t.Errorf("epoch line %q lacks the holdout or the validation figures", l)
			}
		})
	}
}
