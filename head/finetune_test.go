package head

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

	"github.com/tlearn/tlearn/internal/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// ftFixture is a random fine-tuning problem: block5 weights for C
// channels and labelled float16 maps.
type ftFixture struct {
	start      *Weights
	train, val *MapsData
}

func randomBlock5(rng *rand.Rand, c int, classes []string) *Weights {
	w := &Weights{Classes: classes, Tensors: map[string]Tensor{}}
	for i := 1; i <= 3; i++ {
		k := NewTensor(c, c, 3, 3)
		for j := range k.Data {
			k.Data[j] = float32(rng.NormFloat64() * math.Sqrt(2/float64(9*c)))
		}
		b := NewTensor(c)
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
func block5Features(t *testing.T, start *Weights, d *MapsData) []float32 {
	t.Helper()
	s := FineTuneSettings{Settings: Settings{NoHidden: true}}.Resolve()
	spec := s.graphSpec(d.Shape, len(d.Classes))
	sess, err := newFTSession(context.Background(), spec, ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1})
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
		if err := sess.evaluate(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.features.GetData()...)
	}
	return out
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*max(math.Abs(a), math.Abs(b), 1e-12)
}

// TestFineTuneFrozenMatchesTrain: with block5 frozen, FineTune and the
// gonum head trainer fed block5's features are the same model with the same
// initial head, batches and dropout masks, so their losses agree over 100
// steps.
func TestFineTuneFrozenMatchesTrain(t *testing.T) {
	ortlibtest.Init(t)
	for _, tc := range []struct {
		desc string
		s    Settings
	}{
		{"hidden, dropout, shuffled", Settings{Hidden: 16, LR: 1e-3, Batch: 8, Epochs: 10, Seed: 3}},
		{"smoothing, balanced weights, L2", Settings{Hidden: 12, LR: 2e-3, Batch: 8, Epochs: 10, Seed: 4, LabelSmoothing: 0.1, ClassWeights: Balanced, L2: 1e-3}},
		{"no hidden, no shuffle, tail batch", Settings{NoHidden: true, LR: 1e-2, Batch: 12, Epochs: 10, Seed: 5, NoShuffle: true}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			fx := newFTFixture(1, 8, 4, 3, 80, 24)
			ft, err := FineTune(context.Background(), fx.train, fx.val, fx.start,
				FineTuneSettings{Settings: tc.s, FreezeBlock5: true, Runtime: ortlib.Options{Device: ortlib.DeviceCPU}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			train := &Data{X: block5Features(t, fx.start, fx.train), Y: fx.train.Y, Classes: fx.train.Classes}
			val := &Data{X: block5Features(t, fx.start, fx.val), Y: fx.val.Y, Classes: fx.val.Classes}
			hd, err := Train(context.Background(), train, val, tc.s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ft.History) != len(hd.History) {
				t.Fatalf("%d epochs, Train ran %d", len(ft.History), len(hd.History))
			}
			worst := 0.0
			for i, e := range ft.History {
				h := hd.History[i]
				for _, p := range [][2]float64{{e.Loss, h.Loss}, {e.ValLoss, h.ValLoss}} {
					worst = max(worst, math.Abs(p[0]-p[1])/max(math.Abs(p[1]), 1e-12))
				}
				if !relClose(e.Loss, h.Loss, 1e-3) || !relClose(e.ValLoss, h.ValLoss, 1e-3) {
					t.Errorf("epoch %d: loss %.6g / val %.6g, Train %.6g / %.6g", i, e.Loss, e.ValLoss, h.Loss, h.ValLoss)
				}
				if math.Abs(e.Accuracy-h.Accuracy) > 1.5/float64(fx.train.Len()) || math.Abs(e.ValAccuracy-h.ValAccuracy) > 1.5/float64(fx.val.Len()) {
					t.Errorf("epoch %d: accuracy %.4f / val %.4f, Train %.4f / %.4f", i, e.Accuracy, e.ValAccuracy, h.Accuracy, h.ValAccuracy)
				}
			}
			t.Logf("largest relative loss difference over %d epochs: %.2g", len(ft.History), worst)
			for name, want := range hd.Weights.Tensors {
				got := ft.Weights.Tensors[name]
				scale := 0.0
				for _, v := range want.Data {
					scale = max(scale, math.Abs(float64(v)))
				}
				for i := range want.Data {
					if math.Abs(float64(got.Data[i]-want.Data[i])) > 1e-3*scale {
						t.Errorf("%s[%d] = %g, Train's %g", name, i, got.Data[i], want.Data[i])
						break
					}
				}
			}
			// Frozen means frozen, and block5 comes back in torchvision
			// layout.
			for name, want := range fx.start.Tensors {
				got := ft.Weights.Tensors[name]
				if !slices.Equal(got.Shape, want.Shape) || !equalF32(got.Data, want.Data) {
					t.Errorf("%s (shape %v) changed although block5 is frozen", name, got.Shape)
				}
			}
		})
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// spatialFixture: two classes whose maps hold, in channel 0, a pair of hot
// pixels two apart, horizontally for class 0 and vertically for class 1,
// at even coordinates. Every pixel sits alone in its 2×2 pooling
// window, so with an identity block5 the pooled features are the same for
// both classes and the head alone cannot tell them apart; the 7×7
// receptive field of three trained 3×3 convolutions can.
func spatialFixture(seed uint64, n int) (*Weights, *MapsData) {
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
	w := &Weights{Classes: classes, Tensors: map[string]Tensor{}}
	for i := 1; i <= 3; i++ {
		k := NewTensor(c, c, 3, 3)
		for ch := range c {
			k.Data[(ch*c+ch)*9+4] = 1 // identity: only the centre tap
		}
		// A positive bias keeps every unit active, so that gradients
		// reach the off-centre taps; the features stay uninformative.
		b := NewTensor(c)
		for ch := range b.Data {
			b.Data[ch] = 0.1
		}
		w.Tensors[models.Block5WeightName(i)] = k
		w.Tensors[models.Block5BiasName(i)] = b
	}
	return w, d
}

func TestFineTuneLearnsWhatTheHeadCannot(t *testing.T) {
	ortlibtest.Init(t)
	start, train := spatialFixture(1, 192)
	_, val := spatialFixture(2, 64)
	s := FineTuneSettings{
		Settings: Settings{Hidden: 16, NoDropout: true, LR: 1e-2, Batch: 16, Epochs: 20, Seed: 1},
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

// ftRecorder is a Progress that keeps what it is told.
type ftRecorder struct {
	steps  int
	epochs []Epoch
	notes  []string
	cancel func()
	stopAt int // cancel after this many steps (0: never)
}

func (r *ftRecorder) Step(epoch, done, total int) {
	r.steps++
	if r.stopAt > 0 && r.steps == r.stopAt {
		r.cancel()
	}
}
func (r *ftRecorder) EpochDone(e Epoch, epochs int) { r.epochs = append(r.epochs, e) }
func (r *ftRecorder) Note(msg string)               { r.notes = append(r.notes, msg) }

// TestFineTuneResume: a run interrupted in its third epoch and started
// again ends exactly where an uninterrupted run ends.
func TestFineTuneResume(t *testing.T) {
	ortlibtest.Init(t)
	fx := newFTFixture(2, 4, 4, 3, 40, 16)
	base := FineTuneSettings{
		Settings: Settings{Hidden: 8, LR: 1e-3, Batch: 8, Epochs: 4, Seed: 9, SaveBest: true},
		Runtime:  ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1},
	}
	whole, err := FineTune(context.Background(), fx.train, fx.val, fx.start, base, nil)
	if err != nil {
		t.Fatal(err)
	}

	s := base
	s.Checkpoint = filepath.Join(t.TempDir(), CheckpointFile)
	ctx, cancel := context.WithCancel(context.Background())
	rec := &ftRecorder{cancel: cancel, stopAt: 2*5 + 3} // 5 steps per epoch
	if _, err := FineTune(ctx, fx.train, fx.val, fx.start, s, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	if len(rec.epochs) != 2 {
		t.Fatalf("%d epochs finished before the interruption, want 2", len(rec.epochs))
	}
	rec2 := &ftRecorder{}
	again, err := FineTune(context.Background(), fx.train, fx.val, fx.start, s, rec2)
	if err != nil {
		t.Fatal(err)
	}
	if again.Resumed != 2 || len(rec2.notes) == 0 || !strings.Contains(rec2.notes[len(rec2.notes)-1], "resuming") {
		t.Errorf("resumed %d epochs, notes %q", again.Resumed, rec2.notes)
	}
	for i := range whole.History {
		a, b := whole.History[i], again.History[i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("epoch %d: %+v, resumed run %+v", i, b, a)
		}
	}
	for name, w := range whole.Weights.Tensors {
		if !equalF32(w.Data, again.Weights.Tensors[name].Data) {
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
	ortlibtest.Init(t)
	fx := newFTFixture(3, 4, 4, 3, 16, 8)
	other := newFTFixture(3, 6, 4, 3, 16, 8)
	headOf := func(hidden, dim int) *Weights {
		w := fx.start.Clone()
		net := newNetwork(dim, hidden, 3, 1, false)
		defer net.close()
		for n, t := range net.weights(fx.train.Classes).Tensors {
			w.Tensors[n] = t
		}
		return w
	}
	noBlock5 := fx.start.Clone()
	delete(noBlock5.Tensors, models.Block5BiasName(2))
	for _, tc := range []struct {
		desc       string
		train, val *MapsData
		start      *Weights
		s          Settings
		want       string
	}{
		{"maps of another backbone", fx.train, fx.val, other.start, Settings{}, "maps of another backbone"},
		{"train and val shapes differ", fx.train, other.val, fx.start, Settings{}, "different backbones or sizes"},
		{"missing block5 tensor", fx.train, fx.val, noBlock5, Settings{}, "lack block5_conv2.bias"},
		{"init head of another size", fx.train, fx.val, headOf(8, 4), Settings{Hidden: 16}, "8 hidden units"},
		{"init head of another backbone", fx.train, fx.val, headOf(16, 5), Settings{Hidden: 16}, "takes 5 features"},
		{"no maps", &MapsData{Shape: [3]int{4, 4, 4}, Classes: fx.train.Classes, Y: []int32{0}}, fx.val, fx.start, Settings{}, "map values"},
		{"bad settings", fx.train, fx.val, fx.start, Settings{Dropout: 1.5}, "dropout"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := FineTune(context.Background(), tc.train, tc.val, tc.start, FineTuneSettings{Settings: tc.s}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFineTuneSettingsResolve(t *testing.T) {
	for _, tc := range []struct {
		desc string
		in   FineTuneSettings
		want func(FineTuneSettings) bool
		bad  bool
	}{
		{"defaults", FineTuneSettings{}, func(s FineTuneSettings) bool {
			return s.Epochs == DefaultFineTuneEpochs && s.Block5LR == DefaultLR && s.Optimizer == OptimizerAdam && s.Momentum == 0 && s.Hidden == DefaultHidden
		}, false},
		{"block5 rate", FineTuneSettings{Block5LR: 1e-5}, func(s FineTuneSettings) bool { return s.Block5LR == 1e-5 && s.LR == DefaultLR }, false},
		{"sgd momentum default", FineTuneSettings{Optimizer: OptimizerSGD}, func(s FineTuneSettings) bool { return s.Momentum == DefaultMomentum }, false},
		{"plain sgd", FineTuneSettings{Optimizer: OptimizerSGD, NoMomentum: true}, func(s FineTuneSettings) bool { return s.Momentum == 0 }, false},
		{"frozen", FineTuneSettings{FreezeBlock5: true, Block5LR: 1}, func(s FineTuneSettings) bool { return s.Block5LR == 0 }, false},
		{"unknown optimizer", FineTuneSettings{Optimizer: "rmsprop"}, nil, true},
		{"negative block5 rate", FineTuneSettings{Block5LR: -1}, nil, true},
		{"momentum 1", FineTuneSettings{Optimizer: OptimizerSGD, Momentum: 1}, nil, true},
		{"weight decay too large", FineTuneSettings{WeightDecay: 1e5}, nil, true},
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
	fx := newFTFixture(5, 2, 2, 2, 4, 2)
	s := FineTuneSettings{Settings: Settings{Hidden: 2, Epochs: 3, SaveBest: true}}.Resolve()
	good := func() *ftCheckpoint {
		r := newFTRun(fx.train, s)
		shuf, _ := r.shufflePCG.MarshalBinary()
		drop, _ := r.drop.src.MarshalBinary()
		return &ftCheckpoint{best: fx.start, state: ftState{
			Format: checkpointFormat, Fingerprint: fingerprint(s, fx.train, fx.val),
			Steps: 2, History: History{{Epoch: 0}}, Order: []int32{2, 0, 3, 1},
			Shuffle: shuf, Dropout: drop, BestEpoch: 0,
		}}
	}
	if err := newFTRun(fx.train, s).restore(good(), fx.train, fx.val); err != nil {
		t.Fatalf("valid state: %v", err)
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
			err := newFTRun(fx.train, s).restore(ck, fx.train, fx.val)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseCheckpoint: a damaged checkpoint is an error, never a panic.
func FuzzParseCheckpoint(f *testing.F) {
	fx := newFTFixture(4, 2, 2, 2, 4, 2)
	w := withGlorotHead(fx.start, fx.train, FineTuneSettings{Settings: Settings{Hidden: 2}}.Resolve())
	var buf strings.Builder
	ck := &ftCheckpoint{weights: w, moments: map[string]Tensor{traingraph.MomentName(OutputBias, "m"): NewTensor(2)},
		state: ftState{Format: checkpointFormat, Steps: 3, Order: []int32{1, 0, 3, 2}, History: History{{Epoch: 0, Loss: 1}}}}
	all := &Weights{Classes: w.Classes, Tensors: map[string]Tensor{}}
	for n, t := range ck.weights.Tensors {
		all.Tensors[n] = t
	}
	for n, t := range ck.moments {
		all.Tensors[n] = t
	}
	state, _ := json.Marshal(ck.state)
	if err := all.writeWithMeta(&buf, map[string]string{checkpointMeta: string(state)}); err != nil {
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
