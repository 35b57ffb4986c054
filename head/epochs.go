package head

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tlearn/tlearn/head/internal/recipe"
	"github.com/tlearn/tlearn/internal/progress"
)

// Model is what RunEpochs trains: the optimizer steps, the validation and
// a copy of the best parameters of one model. Train implements it for the
// gonum head, finetune.FineTune for block5 and the head under ONNX Runtime.
type Model interface {
	// Step takes one optimizer step on the training examples rows and
	// returns their summed loss and how many of them the model got right.
	Step(ctx context.Context, rows []int32) (loss float64, correct int, err error)
	// Validate returns the mean loss and the accuracy of the current
	// parameters on the validation set.
	Validate(ctx context.Context) (loss, accuracy float64, err error)
	// Measure returns the mean loss and the accuracy of the current
	// parameters, as Validate computes them, on the training examples
	// rows: the holdout (EpochState.Holdout), which they never step on.
	Measure(ctx context.Context, rows []int32) (loss, accuracy float64, err error)
	// Snapshot keeps a copy of the current parameters: the best epoch's
	// so far. RunEpochs only asks for it with Settings.SaveBest or
	// Settings.EarlyStop.
	Snapshot() error
	// Restore makes the last snapshot's parameters current again.
	Restore() error
	// EndEpoch is called after every epoch, once st records it (and the
	// best epoch's snapshot is taken), before the epoch is reported:
	// FineTune writes its checkpoint there.
	EndEpoch(st *EpochState) error
}

// EpochState is where an epoch loop stands between two epochs: all that
// RunEpochs needs to go on, so that a trainer can checkpoint it and resume.
type EpochState struct {
	// History holds the epochs run so far, in order: History[i].Epoch is
	// i+1.
	History History
	// Best is the index in History of the epoch with the highest
	// Epoch.SelectionAccuracy, on the holdout when there is one (the
	// earliest among equals); -1 before the first epoch.
	Best int
	// SinceBest counts the epochs run after Best.
	SinceBest int
	// Stopped says that early stopping ended the loop.
	Stopped bool
	// Order is the example order of the last epoch: the indexes of the
	// training examples stepped on (all but the holdout), shuffled in
	// place at the start of every epoch unless Settings.NoShuffle.
	Order []int32
	// Holdout are the indexes of the training examples set aside to rank
	// the epochs (Settings.Holdout), ascending; nil without a holdout.
	Holdout []int32
	// Shuffle is the generator of the shuffles: the shuffle stream of
	// Settings.Seed, shared by every trainer.
	Shuffle *rand.PCG
}

// NewEpochState is the state before the first epoch over n training
// examples: no history, the examples in their order, and the shuffle
// stream of seed.
func NewEpochState(n int, seed uint64) *EpochState {
	st := &EpochState{Best: -1, Order: make([]int32, n), Shuffle: rand.NewPCG(seed, recipe.StreamShuffle)}
	for i := range st.Order {
		st.Order[i] = int32(i)
	}
	return st
}

// NewEpochStateFor is the state before the first epoch over the training
// examples labelled y under s: with s.Holdout, the examples it steps on
// and those it holds out are CarveHoldout's (an error wrapping ErrHoldout
// when a class cannot give both); without, NewEpochState's.
func NewEpochStateFor(y []int32, classes []string, s Settings) (*EpochState, error) {
	train, holdout, err := s.Rows(y, classes)
	if err != nil {
		return nil, err
	}
	return &EpochState{Best: -1, Order: train, Holdout: holdout, Shuffle: rand.NewPCG(s.Seed, recipe.StreamShuffle)}, nil
}

// DivergedError reports an epoch whose mean training loss is not finite:
// the learning rate is usually too high for the data.
type DivergedError struct {
	Epoch int     // counted from 1
	Loss  float64 // NaN or ±Inf
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("head: training diverged in epoch %d (loss %g)", e.Epoch, e.Loss)
}

// keepsBest says whether a run returns its best epoch's parameters rather
// than the last ones (early stopping always does).
func (s Settings) keepsBest() bool { return s.SaveBest || s.EarlyStop > 0 }

// RunEpochs trains m from where st stands until s.Epochs epochs are
// recorded in st or early stopping ends training: the loop that Train and
// finetune.FineTune share. s must be resolved; st must hold one order
// entry per training example stepped on. Every epoch shuffles st.Order
// (unless s.NoShuffle), steps through it in batches of s.Batch, validates,
// measures the holdout (st.Holdout, when there is one), records the epoch
// in st, keeps the best epoch's parameters when the run returns them
// (s.SaveBest, s.EarlyStop), calls m.EndEpoch and reports the epoch: the
// steps as a phase "epoch N/E" of images on p, then Log(e.Line(E)).
//
// The best epoch and early stopping go by the holdout's accuracy when
// there is a holdout, and by the validation accuracy otherwise: selecting
// on the images whose accuracy is reported makes that accuracy
// optimistic, which Settings.SelectsOnValidation tells the caller.
//
// At the end, a run that keeps its best epoch restores it. RunEpochs
// returns the index in st.History of the epoch whose parameters m holds.
// A cancelled ctx stops it within one step with ctx's error; a loss that
// is not finite stops it with a *DivergedError.
func RunEpochs(ctx context.Context, m Model, st *EpochState, s Settings, p progress.Reporter) (int, error) {
	p = progress.OrNop(p)
	shuffler := rand.New(st.Shuffle)
	for i := len(st.History); i < s.Epochs && !st.Stopped; i++ {
		if !s.NoShuffle {
			shuffler.Shuffle(len(st.Order), func(a, b int) { st.Order[a], st.Order[b] = st.Order[b], st.Order[a] })
		}
		e, err := runEpoch(ctx, m, st, s, i, p)
		if err != nil {
			return -1, err
		}
		if err := st.record(e, s, m); err != nil {
			return -1, err
		}
		if err := m.EndEpoch(st); err != nil {
			return -1, err
		}
		p.Log(e.Line(s.Epochs))
	}
	last := len(st.History) - 1
	if !s.keepsBest() {
		return last, nil
	}
	if err := m.Restore(); err != nil {
		return -1, err
	}
	return st.Best, nil
}

// runEpoch runs the steps of the epoch at index i of the history over
// st.Order, validates and measures the holdout.
func runEpoch(ctx context.Context, m Model, st *EpochState, s Settings, i int, p progress.Reporter) (Epoch, error) {
	order := st.Order
	t0 := time.Now()
	stopped := func() error { return fmt.Errorf("head: training stopped in epoch %d: %w", i+1, ctx.Err()) }
	n := len(order)
	p.Start(fmt.Sprintf("epoch %d/%d", i+1, s.Epochs), n, 0)
	var loss float64
	var correct int
	for r0 := 0; r0 < n; r0 += s.Batch {
		if ctx.Err() != nil {
			p.Finish()
			return Epoch{}, stopped()
		}
		rows := order[r0:min(r0+s.Batch, n)]
		l, c, err := m.Step(ctx, rows)
		if err != nil {
			p.Finish()
			if ctx.Err() != nil {
				return Epoch{}, stopped()
			}
			return Epoch{}, err
		}
		loss += l
		correct += c
		p.Add(len(rows))
	}
	p.Finish()
	e := Epoch{Epoch: i + 1, Accuracy: float64(correct) / float64(n), Loss: loss / float64(n)}
	if math.IsNaN(e.Loss) || math.IsInf(e.Loss, 0) {
		return Epoch{}, &DivergedError{Epoch: e.Epoch, Loss: e.Loss}
	}
	var err error
	if e.ValLoss, e.ValAccuracy, err = m.Validate(ctx); err != nil {
		if ctx.Err() != nil {
			return Epoch{}, stopped()
		}
		return Epoch{}, err
	}
	if len(st.Holdout) > 0 {
		e.HasHoldout = true
		if e.HoldoutLoss, e.HoldoutAccuracy, err = m.Measure(ctx, st.Holdout); err != nil {
			if ctx.Err() != nil {
				return Epoch{}, stopped()
			}
			return Epoch{}, err
		}
	}
	e.Seconds = time.Since(t0).Seconds()
	return e, nil
}

// record appends e and updates the best epoch, its snapshot and early
// stopping.
func (st *EpochState) record(e Epoch, s Settings, m Model) error {
	st.History = append(st.History, e)
	i := len(st.History) - 1
	if st.Best < 0 || e.SelectionAccuracy() > st.History[st.Best].SelectionAccuracy() {
		st.Best, st.SinceBest = i, 0
		if s.keepsBest() {
			if err := m.Snapshot(); err != nil {
				return err
			}
		}
	} else {
		st.SinceBest++
	}
	if s.EarlyStop > 0 && st.SinceBest >= s.EarlyStop && len(st.History) < s.Epochs {
		st.Stopped = true
	}
	return nil
}
