package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// ftFixture is a random fine-tuning problem: block5 weights for C
// channels and labelled float16 maps.
type ftFixture struct {
	start      *head.Weights
	train, val *MapsData
}

func randomBlock5(rng *rand.Rand, c int, classes []string) *head.Weights {
	w := &head.Weights{Classes: classes, Tensors: map[string]head.Tensor{}}
	for i := 1; i <= 3; i++ {
		k := head.NewTensor(c, c, 3, 3)
		for j := range k.Data {
			k.Data[j] = float32(rng.NormFloat64() * math.Sqrt(2/float64(9*c)))
		}
		b := head.NewTensor(c)
		for j := range b.Data {
			b.Data[j] = float32(rng.NormFloat64() * 0.05)
		}
		w.Tensors[models.Block5WeightName(i)] = k
		w.Tensors[models.Block5BiasName(i)] = b
	}
	return w
}

// randomMaps makes n maps whose values depend a little on the label, so
// that a head learns something from the block5 features.
func randomMaps(rng *rand.Rand, n int, shape [3]int, classes []string) *MapsData {
	d := &MapsData{Shape: shape, Classes: classes, Y: make([]int32, n)}
	size := shape[0] * shape[1] * shape[2]
	vals := make([]float32, n*size)
	for i := range n {
		y := rng.IntN(len(classes))
		d.Y[i] = int32(y)
		for j := range size {
			v := rng.NormFloat64() + 0.7*float64((j+y)%len(classes))
			vals[i*size+j] = float32(max(v, 0))
		}
	}
	d.Maps = make([]uint16, len(vals))
	cache.F32ToF16(d.Maps, vals)
	return d
}

func newFTFixture(seed uint64, c, side, k, nTrain, nVal int) *ftFixture {
	rng := rand.New(rand.NewPCG(seed, 99))
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("class%d", i)
	}
	shape := [3]int{c, side, side}
	return &ftFixture{
		start: randomBlock5(rng, c, classes),
		train: randomMaps(rng, nTrain, shape, classes),
		val:   randomMaps(rng, nVal, shape, classes),
	}
}

// block5Features computes the head's input features (GAP of the pooled
// block5 output) of every map with the eval graph.
func block5Features(t *testing.T, start *head.Weights, d *MapsData) []float32 {
	t.Helper()
	s := Settings{Settings: head.Settings{NoHidden: true}}.Resolve()
	spec := s.graphSpec(d.Shape, len(d.Classes))
	sess, err := newSession(spec, ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	w := withGlorotHead(start, d, s)
	if err := sess.load(w, nil); err != nil {
		t.Fatal(err)
	}
	c := d.Shape[0]
	out := make([]float32, 0, d.Len()*c)
	for r0 := 0; r0 < d.Len(); r0 += 16 {
		var rows []int32
		for i := r0; i < min(r0+16, d.Len()); i++ {
			rows = append(rows, int32(i))
		}
		b, err := sess.batch(len(rows))
		if err != nil {
			t.Fatal(err)
		}
		b.fillMaps(d, rows)
		if err := sess.evaluate(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.features.GetData()...)
	}
	return out
}

// TestFineTuneFrozenMatchesTrain: with block5 frozen, FineTune and the
// gonum head trainer fed block5's features are the same model with the same
// initial head, batches and dropout masks, so their losses agree over 100
// steps.
func TestFineTuneFrozenMatchesTrain(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	for _, tc := range []struct {
		desc string
		s    head.Settings
	}{
		{"hidden, dropout, shuffled", head.Settings{Hidden: 16, LR: 1e-3, Batch: 8, Epochs: 10, Seed: 3}},
		{"smoothing, balanced weights, L2", head.Settings{Hidden: 12, LR: 2e-3, Batch: 8, Epochs: 10, Seed: 4, LabelSmoothing: 0.1, ClassWeights: head.Balanced, L2: 1e-3}},
		{"no hidden, no shuffle, tail batch", head.Settings{NoHidden: true, LR: 1e-2, Batch: 12, Epochs: 10, Seed: 5, NoShuffle: true}},
		{"holdout, save best, balanced weights", head.Settings{Hidden: 16, LR: 1e-3, Batch: 8, Epochs: 10, Seed: 3, Holdout: 0.25, HoldoutSeed: 2, SaveBest: true, ClassWeights: head.Balanced}},
		{"cosine schedule, holdout", head.Settings{Hidden: 16, LR: 3e-3, Batch: 8, Epochs: 10, Seed: 6, Holdout: 0.25, Schedule: head.ScheduleCosine}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			fx := newFTFixture(1, 8, 4, 3, 80, 24)
			ft, err := FineTune(context.Background(), fx.train, fx.val, fx.start,
				Settings{Settings: tc.s, FreezeBlock5: true, Runtime: ortlib.Options{Device: ortlib.DeviceCPU}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			train := &head.Data{X: block5Features(t, fx.start, fx.train), Y: fx.train.Y, Classes: fx.train.Classes}
			val := &head.Data{X: block5Features(t, fx.start, fx.val), Y: fx.val.Y, Classes: fx.val.Classes}
			hd, err := head.Train(context.Background(), train, val, tc.s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ft.History) != len(hd.History) || ft.HoldoutN != hd.HoldoutN || ft.SelectedOn != hd.SelectedOn || ft.Best != hd.Best {
				t.Fatalf("%d epochs, %d held out, selected on %q, best %d; Train: %d, %d, %q, %d",
					len(ft.History), ft.HoldoutN, ft.SelectedOn, ft.Best, len(hd.History), hd.HoldoutN, hd.SelectedOn, hd.Best)
			}
			worst := 0.0
			for i, e := range ft.History {
				h := hd.History[i]
				for _, p := range [][2]float64{{e.Loss, h.Loss}, {e.ValLoss, h.ValLoss}, {e.HoldoutLoss, h.HoldoutLoss}} {
					worst = max(worst, math.Abs(p[0]-p[1])/max(math.Abs(p[1]), 1e-12))
				}
				if e.HasHoldout != (tc.s.Holdout > 0) || !tol.Close(e.HoldoutLoss, h.HoldoutLoss, 0, 1e-3) {
					t.Errorf("epoch %d: holdout %v, loss %.6g, Train's %.6g", i, e.HasHoldout, e.HoldoutLoss, h.HoldoutLoss)
				}
				if !tol.Close(e.Loss, h.Loss, 0, 1e-3) || !tol.Close(e.ValLoss, h.ValLoss, 0, 1e-3) {
					t.Errorf("epoch %d: loss %.6g / val %.6g, Train %.6g / %.6g", i, e.Loss, e.ValLoss, h.Loss, h.ValLoss)
				}
				if !tol.Close(e.Accuracy, h.Accuracy, 1.5/float64(fx.train.Len()), 0) || !tol.Close(e.ValAccuracy, h.ValAccuracy, 1.5/float64(fx.val.Len()), 0) {
					t.Errorf("epoch %d: accuracy %.4f / val %.4f, Train %.4f / %.4f", i, e.Accuracy, e.ValAccuracy, h.Accuracy, h.ValAccuracy)
				}
			}
			t.Logf("largest relative loss difference over %d epochs: %.2g", len(ft.History), worst)
			for name, want := range hd.Weights.Tensors {
				if err := tol.Floats(ft.Weights.Tensors[name].Data, want.Data, 1e-3*tol.MaxAbs(want.Data), 0); err != nil {
					t.Errorf("%s, against Train's: %v", name, err)
				}
			}
			// Frozen means frozen, and block5 comes back in torchvision
			// layout.
			for name, want := range fx.start.Tensors {
				got := ft.Weights.Tensors[name]
				if !slices.Equal(got.Shape, want.Shape) || !slices.Equal(got.Data, want.Data) {
					t.Errorf("%s (shape %v) changed although block5 is frozen", name, got.Shape)
				}
			}
		})
	}
}

// spatialFixture: two classes whose maps hold, in channel 0, a pair of hot
// pixels two apart, horizontally for class 0 and vertically for class 1,
// at even coordinates. Every pixel sits alone in its 2×2 pooling
// window, so with an identity block5 the pooled features are the same for
// both classes and the head alone cannot tell them apart; the 7×7
// receptive field of three trained 3×3 convolutions can.
func spatialFixture(seed uint64, n int) (*head.Weights, *MapsData) {
	const c, side = 4, 8
	rng := rand.New(rand.NewPCG(seed, 7))
	classes := []string{"horizontal", "vertical"}
	d := &MapsData{Shape: [3]int{c, side, side}, Classes: classes, Y: make([]int32, n)}
	size := c * side * side
	vals := make([]float32, n*size)
	for i := range n {
		y := i % 2
		d.Y[i] = int32(y)
		m := vals[i*size : i*size+side*side] // channel 0
		r, q := 2*rng.IntN(side/2-1), 2*rng.IntN(side/2-1)
		m[r*side+q] = 1
		if y == 0 {
			m[r*side+q+2] = 1
		} else {
			m[(r+2)*side+q] = 1
		}
	}
	d.Maps = make([]uint16, len(vals))
	cache.F32ToF16(d.Maps, vals)
	w := &head.Weights{Classes: classes, Tensors: map[string]head.Tensor{}}
	for i := 1; i <= 3; i++ {
		k := head.NewTensor(c, c, 3, 3)
		for ch := range c {
			k.Data[(ch*c+ch)*9+4] = 1 // identity: only the centre tap
		}
		// A positive bias keeps every unit active, so that gradients
		// reach the off-centre taps; the features stay uninformative.
		b := head.NewTensor(c)
		for ch := range b.Data {
			b.Data[ch] = 0.1
		}
		w.Tensors[models.Block5WeightName(i)] = k
		w.Tensors[models.Block5BiasName(i)] = b
	}
	return w, d
}

func TestFineTuneLearnsWhatTheHeadCannot(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	start, train := spatialFixture(1, 192)
	_, val := spatialFixture(2, 64)
	s := Settings{
		Settings: head.Settings{Hidden: 16, NoDropout: true, LR: 1e-2, Batch: 16, Epochs: 20, Seed: 1},
		Runtime:  ortlib.Options{Device: ortlib.DeviceCPU},
	}
	frozen := s
	frozen.FreezeBlock5 = true
	headOnly, err := FineTune(context.Background(), train, val, start, frozen, nil)
	if err != nil {
		t.Fatal(err)
	}
	tuned, err := FineTune(context.Background(), train, val, start, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, f := headOnly.History[len(headOnly.History)-1], tuned.History[len(tuned.History)-1]
	t.Logf("validation accuracy: head only %.3f, fine-tuned %.3f", h.ValAccuracy, f.ValAccuracy)
	if h.ValAccuracy > 0.65 {
		t.Errorf("head only reached %.3f on a problem its features cannot separate: the fixture is broken", h.ValAccuracy)
	}
	if f.ValAccuracy < 0.9 {
		t.Errorf("fine-tuning reached only %.3f", f.ValAccuracy)
	}
}

// cancelAfter records the reports and cancels after n steps.
type cancelAfter struct {
	progress.Recorder
	n, steps int
	cancel   func()
}

func (r *cancelAfter) Add(n int) {
	r.Recorder.Add(n)
	if r.steps++; r.steps == r.n {
		r.cancel()
	}
}

// TestFineTuneResume: a run interrupted in its third epoch and started
// again ends exactly where an uninterrupted run ends, with a holdout too.
func TestFineTuneResume(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	for _, tc := range []struct {
		desc    string
		holdout float64
		n       int // maps in the training set: 5 steps of 8 per epoch
	}{{"all maps", 0, 40}, {"holdout", 0.2, 50}} {
		t.Run(tc.desc, func(t *testing.T) { testFineTuneResume(t, tc.holdout, tc.n) })
	}
}

func testFineTuneResume(t *testing.T, holdout float64, n int) {
	fx := newFTFixture(2, 4, 4, 3, n, 16)
	base := Settings{
		Settings: head.Settings{Hidden: 8, LR: 1e-3, Batch: 8, Epochs: 4, Seed: 9, SaveBest: true, Holdout: holdout},
		Runtime:  ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1},
	}
	whole, err := FineTune(context.Background(), fx.train, fx.val, fx.start, base, nil)
	if err != nil {
		t.Fatal(err)
	}

	s := base
	s.Checkpoint = filepath.Join(t.TempDir(), CheckpointFile)
	ctx, cancel := context.WithCancel(context.Background())
	rec := &cancelAfter{cancel: cancel, n: 2*5 + 3} // 5 steps per epoch
	if _, err := FineTune(ctx, fx.train, fx.val, fx.start, s, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	if logs := rec.Logs(); len(logs) != 2 || !strings.HasPrefix(logs[1], "epoch 2/4  loss") {
		t.Fatalf("epochs reported before the interruption: %q, want 2", logs)
	}
	rec2 := &progress.Recorder{}
	again, err := FineTune(context.Background(), fx.train, fx.val, fx.start, s, rec2)
	if err != nil {
		t.Fatal(err)
	}
	if logs := rec2.Logs(); again.Resumed != 2 || len(logs) != 3 || !strings.Contains(logs[0], "resuming") || !strings.HasPrefix(logs[1], "epoch 3/4") {
		t.Errorf("resumed %d epochs, logs %q", again.Resumed, logs)
	}
	for i := range whole.History {
		a, b := whole.History[i], again.History[i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("epoch %d: %+v, resumed run %+v", i, b, a)
		}
	}
	for name, w := range whole.Weights.Tensors {
		if !slices.Equal(w.Data, again.Weights.Tensors[name].Data) {
			t.Errorf("%s differs after resuming", name)
		}
	}

	// A changed setting refuses the checkpoint.
	s.LR = 2e-3
	if _, err := FineTune(context.Background(), fx.train, fx.val, fx.start, s, nil); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("changed settings: %v", err)
	}
	if _, err := os.Stat(s.Checkpoint); err != nil {
		t.Error(err)
	}
}

func TestFineTuneErrors(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	fx := newFTFixture(3, 4, 4, 3, 16, 8)
	other := newFTFixture(3, 6, 4, 3, 16, 8)
	headOf := func(hidden, dim int) *head.Weights {
		w := fx.start.Clone()
		for n, t := range head.InitialWeights(dim, hidden, fx.train.Classes, 0).Tensors {
			w.Tensors[n] = t
		}
		return w
	}
	noBlock5 := fx.start.Clone()
	delete(noBlock5.Tensors, models.Block5BiasName(2))
	for _, tc := range []struct {
		desc       string
		train, val *MapsData
		start      *head.Weights
		s          head.Settings
		want       string
	}{
		{"maps of another backbone", fx.train, fx.val, other.start, head.Settings{}, "maps of another backbone"},
		{"train and val shapes differ", fx.train, other.val, fx.start, head.Settings{}, "different backbones or sizes"},
		{"missing block5 tensor", fx.train, fx.val, noBlock5, head.Settings{}, "lack block5_conv2.bias"},
		{"init head of another size", fx.train, fx.val, headOf(8, 4), head.Settings{Hidden: 16}, "8 hidden units"},
		{"init head of another backbone", fx.train, fx.val, headOf(16, 5), head.Settings{Hidden: 16}, "takes 5 features"},
		{"no maps", &MapsData{Shape: [3]int{4, 4, 4}, Classes: fx.train.Classes, Y: []int32{0}}, fx.val, fx.start, head.Settings{}, "map values"},
		{"bad settings", fx.train, fx.val, fx.start, head.Settings{Dropout: 1.5}, "dropout"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := FineTune(context.Background(), tc.train, tc.val, tc.start, Settings{Settings: tc.s}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSettingsResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		in   Settings
		want func(Settings) bool
		bad  bool
	}{
		{"defaults", Settings{}, func(s Settings) bool {
			return s.Epochs == DefaultEpochs && s.Block5LR == head.DefaultLR && s.Optimizer == OptimizerAdam && s.Momentum == 0 && s.Hidden == head.DefaultHidden
		}, false},
		{"block5 rate", Settings{Block5LR: 1e-5}, func(s Settings) bool { return s.Block5LR == 1e-5 && s.LR == head.DefaultLR }, false},
		{"sgd momentum default", Settings{Optimizer: OptimizerSGD}, func(s Settings) bool { return s.Momentum == DefaultMomentum }, false},
		{"plain sgd", Settings{Optimizer: OptimizerSGD, NoMomentum: true}, func(s Settings) bool { return s.Momentum == 0 }, false},
		{"frozen", Settings{FreezeBlock5: true, Block5LR: 1}, func(s Settings) bool { return s.Block5LR == 0 }, false},
		{"unknown optimizer", Settings{Optimizer: "rmsprop"}, nil, true},
		{"negative block5 rate", Settings{Block5LR: -1}, nil, true},
		{"momentum 1", Settings{Optimizer: OptimizerSGD, Momentum: 1}, nil, true},
		{"weight decay too large", Settings{WeightDecay: 1e5}, nil, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.in.Validate()
			if tc.bad != (err != nil) {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.bad && !tc.want(tc.in.Resolve()) {
				t.Errorf("Resolve gave %+v", tc.in.Resolve())
			}
		})
	}
}

// TestRestoreRefusesDamagedState: a checkpoint whose state passes the
// fingerprint but would index outside the data or the history is refused
// at restore, not left to panic in the next epoch.
func TestRestoreRefusesDamagedState(t *testing.T) {
	t.Parallel()
	fx := newFTFixture(5, 2, 2, 2, 4, 2)
	s := Settings{Settings: head.Settings{Hidden: 2, Epochs: 3, SaveBest: true}}.Resolve()
	good := func() *ftCheckpoint {
		shuf, _ := head.NewEpochState(fx.train.Len(), s.Seed).Shuffle.MarshalBinary()
		drop, _ := newModel(nil, fx.train, fx.val, head.NewEpochState(fx.train.Len(), 0).Order, s).drop.MarshalBinary()
		return &ftCheckpoint{best: fx.start, state: ftState{
			Format: checkpointFormat, Fingerprint: fingerprint(s, fx.train, fx.val),
			Steps: 2, History: head.History{{Epoch: 1}}, Order: []int32{2, 0, 3, 1},
			Shuffle: shuf, Dropout: drop, BestEpoch: 0,
		}}
	}
	restore := func(ck *ftCheckpoint) error {
		return newModel(nil, fx.train, fx.val, head.NewEpochState(fx.train.Len(), 0).Order, s).restore(ck, head.NewEpochState(fx.train.Len(), s.Seed))
	}
	if err := restore(good()); err != nil {
		t.Fatalf("valid state: %v", err)
	}
	// The checkpoint of an older tlearn counts its epochs from 0.
	old := good()
	old.state.Format, old.state.History = checkpointFormat1, head.History{{Epoch: 0}}
	st := head.NewEpochState(fx.train.Len(), s.Seed)
	if err := newModel(nil, fx.train, fx.val, head.NewEpochState(fx.train.Len(), 0).Order, s).restore(old, st); err != nil || st.History[0].Epoch != 1 {
		t.Errorf("format 1: %v, history %+v", err, st.History)
	}
	for _, tc := range []struct {
		desc   string
		damage func(*ftState)
		want   string
	}{
		{"order out of range", func(st *ftState) { st.Order[1] = 40 }, "permutation"},
		{"negative order", func(st *ftState) { st.Order[1] = -1 }, "permutation"},
		{"repeated example", func(st *ftState) { st.Order[1] = 2 }, "permutation"},
		{"best epoch past the history", func(st *ftState) { st.BestEpoch = 1 }, "best epoch"},
		{"no best epoch", func(st *ftState) { st.BestEpoch = -1 }, "best epoch"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			ck := good()
			tc.damage(&ck.state)
			err := restore(ck)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseCheckpoint: a damaged checkpoint is an error, never a panic.
func FuzzParseCheckpoint(f *testing.F) {
	fx := newFTFixture(4, 2, 2, 2, 4, 2)
	w := withGlorotHead(fx.start, fx.train, Settings{Settings: head.Settings{Hidden: 2}}.Resolve())
	var buf strings.Builder
	ck := &ftCheckpoint{weights: w, moments: map[string]head.Tensor{traingraph.MomentName(head.OutputBias, "m"): head.NewTensor(2)},
		state: ftState{Format: checkpointFormat, Steps: 3, Order: []int32{1, 0, 3, 2}, History: head.History{{Epoch: 1, Loss: 1}}}}
	all := &head.Weights{Classes: w.Classes, Tensors: map[string]head.Tensor{}}
	for n, t := range ck.weights.Tensors {
		all.Tensors[n] = t
	}
	for n, t := range ck.moments {
		all.Tensors[n] = t
	}
	state, _ := json.Marshal(ck.state)
	if err := all.Encode(&buf, map[string]string{checkpointMeta: string(state)}); err != nil {
		f.Fatal(err)
	}
	valid := []byte(buf.String())
	if got, err := parseCheckpoint(valid); err != nil || got.state.Steps != 3 || len(got.moments) != 1 {
		f.Fatalf("round trip: %v %+v", err, got)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		ck, err := parseCheckpoint(b)
		if err == nil && ck.weights == nil {
			t.Error("no error and no weights")
		}
	})
}

// TestCheckpointChecked: a checkpoint records the sha256 of its tensors;
// one changed after it was written is refused, naming the file.
func TestCheckpointChecked(t *testing.T) {
	t.Parallel()
	fx := newFTFixture(4, 2, 2, 2, 4, 2)
	w := withGlorotHead(fx.start, fx.train, Settings{Settings: head.Settings{Hidden: 2}}.Resolve())
	ck := &ftCheckpoint{weights: w, moments: map[string]head.Tensor{traingraph.MomentName(head.OutputBias, "m"): head.NewTensor(2)},
		state: ftState{Format: checkpointFormat, Steps: 3, Order: []int32{1, 0, 3, 2}, History: head.History{{Epoch: 1, Loss: 1}}}}
	p := filepath.Join(t.TempDir(), CheckpointFile)
	if err := writeCheckpoint(p, ck); err != nil {
		t.Fatal(err)
	}
	if got, err := readCheckpoint(p); err != nil || got.state.Steps != 3 {
		t.Fatalf("round trip: %v", err)
	}
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	if _, err := readCheckpoint(p); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), p) {
		t.Errorf("a changed checkpoint: %v; want ErrChanged naming %s", err, p)
	}
}
