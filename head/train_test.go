package head

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/tol"
)

func TestTrainSeparable(t *testing.T) {
	t.Parallel()
	train := blobs(120, 8, 3, 3, 1)
	val := blobs(60, 8, 3, 3, 2)
	for _, tc := range []struct {
		desc string
		s    Settings
	}{
		{"reference head", Settings{Hidden: 32, LR: 1e-2, Epochs: 15, Seed: 1}},
		{"no hidden layer", Settings{NoHidden: true, LR: 5e-2, Epochs: 15, Seed: 1}},
		{"no dropout, tutorial order", Settings{Hidden: 16, NoDropout: true, NoShuffle: true, LR: 1e-2, Epochs: 15, Seed: 1}},
		{"class weights, smoothing, L2", Settings{Hidden: 16, ClassWeights: Balanced, LabelSmoothing: 0.1, L2: 1e-3, LR: 1e-2, Epochs: 15, Seed: 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rec := &progress.Recorder{}
			res, err := Train(context.Background(), train, val, tc.s, rec)
			if err != nil {
				t.Fatal(err)
			}
			h := res.History
			if logs := rec.Logs(); len(h) != tc.s.Epochs || len(logs) != tc.s.Epochs || logs[0] != h[0].Line(tc.s.Epochs) {
				t.Fatalf("%d epochs in the history, %d reported (%q), want %d", len(h), len(logs), logs, tc.s.Epochs)
			}
			steps := 0
			for _, e := range rec.Events {
				if strings.HasPrefix(e, "add ") {
					steps++
				}
			}
			if want := tc.s.Epochs * 4; steps != want || rec.Added != tc.s.Epochs*train.Len() { // 120 rows in batches of 32
				t.Errorf("%d steps of %d images reported, want %d of %d", steps, rec.Added, want, tc.s.Epochs*train.Len())
			}
			if want := fmt.Sprintf("start epoch 1/%d %d 0", tc.s.Epochs, train.Len()); rec.Events[0] != want {
				t.Errorf("first report %q, want %q", rec.Events[0], want)
			}
			if h[len(h)-1].Loss >= h[0].Loss/2 {
				t.Errorf("loss went from %g to %g; want it at least halved", h[0].Loss, h[len(h)-1].Loss)
			}
			for _, d := range []*Data{train, val} {
				r, err := Evaluate(context.Background(), res.Weights, d, 2)
				if err != nil {
					t.Fatal(err)
				}
				if r.Accuracy != 1 {
					t.Errorf("accuracy %g, want 1", r.Accuracy)
				}
			}
			if got := h[len(h)-1].ValAccuracy; got != 1 {
				t.Errorf("final val_accuracy %g, want 1", got)
			}
		})
	}
}

// TestDeterministic trains twice with each setting, once with one core and
// once with all: the weights must be bit-identical, and a different seed
// must change them.
func TestDeterministic(t *testing.T) {
	// Not parallel: it changes GOMAXPROCS.
	train := blobs(200, 40, 4, 1, 1)
	val := blobs(50, 40, 4, 1, 2)
	s := Settings{Hidden: 48, Epochs: 3, LR: 1e-3, Seed: 42}
	run := func(procs int, s Settings) *Result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		// The backend reads GOMAXPROCS when the network is made.
		res, err := Train(context.Background(), train, val, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(1, s), run(max(2, runtime.NumCPU()), s)
	if !sameWeights(a.Weights, b.Weights) {
		t.Error("two runs with seed 42 differ")
	}
	for i := range a.History {
		x, y := a.History[i], b.History[i]
		x.Seconds, y.Seconds = 0, 0
		if x != y {
			t.Errorf("epoch %d: %+v vs %+v", i, x, y)
		}
	}
	s.Seed = 43
	if sameWeights(a.Weights, run(1, s).Weights) {
		t.Error("seeds 42 and 43 give the same weights")
	}
}

func sameWeights(a, b *Weights) bool {
	if len(a.Tensors) != len(b.Tensors) {
		return false
	}
	for name, ta := range a.Tensors {
		tb, ok := b.Tensors[name]
		if !ok || len(ta.Data) != len(tb.Data) {
			return false
		}
		for i := range ta.Data {
			if math.Float32bits(ta.Data[i]) != math.Float32bits(tb.Data[i]) {
				return false
			}
		}
	}
	return true
}

func TestEarlyStopRestoresBest(t *testing.T) {
	t.Parallel()
	// Overlapping classes and a high learning rate: the validation accuracy
	// peaks early and then wanders.
	train := blobs(200, 10, 3, 0.5, 1)
	val := blobs(90, 10, 3, 0.5, 2)
	for _, tc := range []struct {
		desc string
		s    Settings
	}{
		{"early stop", Settings{Hidden: 64, LR: 3e-2, Epochs: 40, EarlyStop: 3, Seed: 3}},
		{"save best", Settings{Hidden: 64, LR: 3e-2, Epochs: 12, SaveBest: true, Seed: 3}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			res, err := Train(context.Background(), train, val, tc.s, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := res.History
			best := h.Best()
			if res.Best != best || res.WeightsEpoch != h[best].Epoch || h[best].Epoch != best+1 {
				t.Fatalf("Best %d, WeightsEpoch %d; want %d and epoch %d", res.Best, res.WeightsEpoch, best, best+1)
			}
			if tc.s.EarlyStop > 0 {
				if !res.EarlyStopped || len(h) != best+1+tc.s.EarlyStop {
					t.Fatalf("ran %d epochs (stopped early: %v) with the best at %d and patience %d", len(h), res.EarlyStopped, best, tc.s.EarlyStop)
				}
			}
			if best == len(h)-1 {
				t.Fatalf("the best epoch is the last one (%d): the fixture does not exercise restoring", best)
			}
			r, err := Evaluate(context.Background(), res.Weights, val, 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.Accuracy != h[best].ValAccuracy || !tol.Close(r.Loss, h[best].ValLoss, 1e-9, 1e-6) {
				t.Errorf("returned weights: accuracy %g, loss %g; best epoch %d had %g, %g", r.Accuracy, r.Loss, best, h[best].ValAccuracy, h[best].ValLoss)
			}
		})
	}
}

func TestTrainCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Train(ctx, blobs(40, 4, 2, 1, 1), blobs(10, 4, 2, 1, 2), Settings{Epochs: 2}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestTrainBadInput(t *testing.T) {
	t.Parallel()
	good := blobs(20, 4, 2, 1, 1)
	other := blobs(20, 5, 2, 1, 1)
	renamed := blobs(20, 4, 2, 1, 1)
	renamed.Classes = []string{"x", "y"}
	badLabel := blobs(20, 4, 2, 1, 1)
	badLabel.Y[3] = 2
	ragged := &Data{X: make([]float32, 7), Y: make([]int32, 2), Classes: []string{"a"}}
	for _, tc := range []struct {
		desc       string
		train, val *Data
		s          Settings
		want       string
	}{
		{"dimension mismatch", good, other, Settings{}, "different backbones"},
		{"class mismatch", good, renamed, Settings{}, "differ from validation classes"},
		{"label out of range", badLabel, good, Settings{}, "label 2"},
		{"ragged rows", ragged, good, Settings{}, "do not make 2 rows"},
		{"empty", &Data{}, good, Settings{}, "no examples"},
		{"nil validation", good, nil, Settings{}, "no examples"},
		{"dropout 1", good, good, Settings{Dropout: 1}, "dropout"},
		{"negative lr", good, good, Settings{LR: -1}, "learning rate"},
		{"negative batch", good, good, Settings{Batch: -2}, "batch"},
		{"smoothing 1", good, good, Settings{LabelSmoothing: 1}, "label smoothing"},
		{"NaN L2", good, good, Settings{L2: math.NaN()}, "L2"},
		{"negative patience", good, good, Settings{EarlyStop: -1}, "patience"},
		{"negative hidden", good, good, Settings{Hidden: -5}, "hidden"},
		{"holdout 1.5", good, good, Settings{Holdout: 1.5}, "holdout fraction 1.5"},
		{"negative holdout", good, good, Settings{Holdout: -0.1}, "holdout fraction"},
		{"holdout of a one-row class", &Data{X: make([]float32, 12), Y: []int32{0, 0, 1}, Classes: good.Classes}, good,
			Settings{Holdout: 0.5}, `"class1" (1 row)`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Train(context.Background(), tc.train, tc.val, tc.s, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSettingsResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		in   Settings
		want Settings
	}{
		{"zero value", Settings{}, Settings{Hidden: 1024, Dropout: 0.5, LR: 1e-4, Batch: 32, Epochs: 50}},
		{"no hidden", Settings{NoHidden: true, Hidden: 10}, Settings{NoHidden: true, NoDropout: true, LR: 1e-4, Batch: 32, Epochs: 50}},
		{"no dropout", Settings{NoDropout: true, Dropout: 0.3}, Settings{Hidden: 1024, NoDropout: true, LR: 1e-4, Batch: 32, Epochs: 50}},
		{"explicit", Settings{Hidden: 7, Dropout: 0.2, LR: 1, Batch: 3, Epochs: 2}, Settings{Hidden: 7, Dropout: 0.2, LR: 1, Batch: 3, Epochs: 2}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := tc.in.Resolve(); got != tc.want {
				t.Errorf("Resolve() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPredict(t *testing.T) {
	t.Parallel()
	train, val := blobs(90, 6, 3, 3, 1), blobs(30, 6, 3, 3, 2)
	res, err := Train(context.Background(), train, val, Settings{Hidden: 16, LR: 3e-2, Epochs: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Predict(res.Weights, val.X)
	if err != nil {
		t.Fatal(err)
	}
	for i := range val.Len() {
		row := p[i*3 : (i+1)*3]
		var sum float64
		arg := 0
		for j, v := range row {
			sum += float64(v)
			if v > row[arg] {
				arg = j
			}
		}
		if !tol.Close(sum, 1, 1e-6, 0) || arg != int(val.Y[i]) {
			t.Fatalf("row %d: probabilities %v (sum %g), label %d", i, row, sum, val.Y[i])
		}
	}
	if _, err := Predict(res.Weights, make([]float32, 7)); err == nil {
		t.Error("Predict accepted 7 values for rows of 6")
	}
	// Invalid weights are an error, not a panic (InputDim reads shapes).
	bad := res.Weights.Clone()
	delete(bad.Tensors, OutputWeight)
	bad.Tensors[OutputBias] = Tensor{}
	for _, w := range []*Weights{bad, {Classes: []string{"a"}}} {
		if _, err := Predict(w, val.X); err == nil {
			t.Error("Predict accepted invalid weights")
		}
	}
}

// TestStepAllocates nothing: every buffer is made once per Train call.
func TestStepAllocatesNothing(t *testing.T) {
	// Not parallel: it counts allocations (testing.AllocsPerRun).
	forBackends(t, func(t *testing.T, be gemmBackend) {
		c := gradCase{hidden: 64, dropout: 0.5, l2: 1e-3, d: 40, k: 5, batch: 16, n: 20}
		n, data, rows, o := c.setup(be)
		defer n.close()
		n.trainStep(data.X, data.Y, rows, o)
		if a := testing.AllocsPerRun(20, func() { n.trainStep(data.X, data.Y, rows, o) }); a != 0 {
			t.Errorf("a training step allocates %g times", a)
		}
		if a := testing.AllocsPerRun(20, func() { n.validate(data, 0) }); a != 0 {
			t.Errorf("validation allocates %g times", a)
		}
	})
}
