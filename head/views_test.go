package head

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// withViews returns d with k views per row: view 0 is d's row, views
// 1..k-1 the row plus seeded noise of size noise (0: exact copies).
func withViews(d *Data, k int, noise float64, seed uint64) *Data {
	r := rand.New(rand.NewPCG(seed, 7))
	dim := d.Dim()
	x := make([]float32, 0, d.Len()*k*dim)
	for i := range d.Len() {
		for v := range k {
			for _, f := range d.Row(i) {
				if v > 0 {
					f += float32(noise * r.NormFloat64())
				}
				x = append(x, f)
			}
		}
	}
	return &Data{X: x, Y: d.Y, Classes: d.Classes, Views: k}
}

// K copies of each row train exactly as the plain rows: the sampler picks
// a view row holding the same values and the right label, and nothing else
// changes (validation on the plain set).
func TestViewsOfCopiesTrainAsPlain(t *testing.T) {
	t.Parallel()
	train, val := blobs(90, 6, 3, 2, 1), blobs(30, 6, 3, 2, 2)
	s := Settings{Hidden: 8, LR: 1e-2, Epochs: 4, Seed: 3}
	plain, err := Train(context.Background(), train, val, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	copies, err := Train(context.Background(), withViews(train, 4, 0, 1), val, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plain.History {
		a, b := plain.History[i], copies.History[i]
		a.Seconds, b.Seconds = 0, 0
		if a != b {
			t.Errorf("epoch %d: plain %+v, copies %+v", i+1, a, b)
		}
	}
	if !slices.Equal(plain.Weights.Tensors[OutputWeight].Data, copies.Weights.Tensors[OutputWeight].Data) {
		t.Error("the output weights differ")
	}
}

// Training draws different views in different epochs, reproducibly, and
// the draw is a function of (seed, epoch, row) alone.
func TestDrawViews(t *testing.T) {
	t.Parallel()
	y := make([]int32, 200)
	s := NewViewSampler(y, 4, 9)
	st := NewEpochState(len(y), 9)
	rows := []int32{5, 17, 3, 199, 0}
	s.Sync(st)
	e0 := slices.Clone(s.Rows(rows))
	st.History = append(st.History, Epoch{Epoch: 1})
	s.Sync(st)
	e1 := slices.Clone(s.Rows(rows))
	if slices.Equal(e0, e1) {
		t.Errorf("epochs 1 and 2 draw the same views %v", e0)
	}
	for i, r := range rows {
		if e0[i]/4 != r || e0[i] != r*4+int32(DrawView(9, 0, int(r), 4)) {
			t.Errorf("row %d: view row %d", r, e0[i])
		}
	}
	if got := s.Rows([]int32{3}); got[0] != e1[2] {
		t.Errorf("row 3 alone draws %d, in a batch %d", got[0], e1[2])
	}
	var count [4]int
	for r := range 4000 {
		count[DrawView(1, 2, r, 4)]++
	}
	for v, c := range count {
		if c < 900 || c > 1100 {
			t.Errorf("view %d drawn %d times of 4000", v, c)
		}
	}
	if NewViewSampler(y, 1, 9) != nil {
		t.Error("a sampler for one view")
	}
	var none *ViewSampler
	if got := none.Rows(rows); &got[0] != &rows[0] || &none.Labels(y)[0] != &y[0] {
		t.Error("a nil sampler does not pass rows and labels through")
	}

	train, val := blobs(90, 6, 3, 2, 1), blobs(30, 6, 3, 2, 2)
	views := withViews(train, 3, 0.5, 4)
	set := Settings{Hidden: 8, LR: 1e-2, Epochs: 3, Seed: 3}
	a, err := Train(context.Background(), views, val, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), views, val, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Train(context.Background(), train, val, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.History[2].Loss != b.History[2].Loss || a.History[2].Loss == plain.History[2].Loss {
		t.Errorf("losses of the third epoch: %g and %g with views, %g plain", a.History[2].Loss, b.History[2].Loss, plain.History[2].Loss)
	}
}

// Test-time augmentation: Evaluate on data with views reports the mean of
// the views' probabilities, computed here from Predict on each view alone.
func TestEvaluateViews(t *testing.T) {
	t.Parallel()
	train, val := blobs(90, 6, 3, 1, 1), blobs(300, 6, 3, 1, 2)
	res, err := Train(context.Background(), train, val, Settings{Hidden: 8, LR: 1e-2, Epochs: 3, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const k = 3
	views := withViews(val, k, 1.5, 5)
	rep, err := Evaluate(context.Background(), res.Weights, views, 2)
	if err != nil {
		t.Fatal(err)
	}
	nc := len(val.Classes)
	mean := make([]float64, val.Len()*nc)
	for v := range k {
		p, err := Predict(res.Weights, views.View(v).X)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range p {
			mean[i] += float64(x) / k
		}
	}
	correct, loss := 0, 0.0
	for i := range val.Len() {
		row := mean[i*nc : (i+1)*nc]
		best := 0
		for j := range row {
			if row[j] > row[best] {
				best = j
			}
		}
		if best == int(val.Y[i]) {
			correct++
		}
		loss -= math.Log(row[val.Y[i]])
	}
	if got, want := rep.Accuracy, float64(correct)/float64(val.Len()); got != want {
		t.Errorf("accuracy %g, want %g", got, want)
	}
	if !tol.Close(rep.Loss, loss/float64(val.Len()), 1e-5, 1e-5) {
		t.Errorf("loss %g, want %g", rep.Loss, loss/float64(val.Len()))
	}
	plain, err := Evaluate(context.Background(), res.Weights, views.View(0), 2)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Accuracy == rep.Accuracy && plain.Loss == rep.Loss {
		t.Error("averaging the views changed nothing")
	}
	net := newNetwork(6, 8, nc, 256, true, backend)
	defer net.close()
	net.setWeights(res.Weights)
	vl, va := net.validate(views, 0)
	if va != rep.Accuracy || !tol.Close(vl, rep.Loss, 1e-5, 1e-5) {
		t.Errorf("validation with views: loss %g accuracy %g, Evaluate %g %g", vl, va, rep.Loss, rep.Accuracy)
	}
}

// A holdout carved from data with views is measured like validation: K
// identical copies of each row, with and without views on the validation
// data (test-time augmentation), select the same epoch with the same
// holdout figures as the plain data (the losses, under test-time
// augmentation, within rounding: the views' mean is computed in another
// order).
func TestViewsWithHoldout(t *testing.T) {
	t.Parallel()
	train, val := blobs(90, 6, 3, 2, 1), blobs(30, 6, 3, 2, 2)
	s := Settings{Hidden: 8, LR: 1e-2, Epochs: 5, Seed: 3, Holdout: 0.2, SaveBest: true}
	plain, err := Train(context.Background(), train, val, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tta := range []bool{false, true} {
		v := val
		if tta {
			v = withViews(val, 4, 0, 1)
		}
		copies, err := Train(context.Background(), withViews(train, 4, 0, 1), v, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range plain.History {
			a, b := plain.History[i], copies.History[i]
			a.Seconds, b.Seconds = 0, 0
			if tta && math.Abs(a.ValLoss-b.ValLoss) < 1e-7 && math.Abs(a.HoldoutLoss-b.HoldoutLoss) < 1e-7 {
				b.ValLoss, b.HoldoutLoss = a.ValLoss, a.HoldoutLoss
			}
			if a != b {
				t.Errorf("tta %v, epoch %d: plain %+v, copies %+v", tta, i+1, a, b)
			}
		}
		if plain.Best != copies.Best {
			t.Errorf("tta %v: best epoch %+v, plain %+v", tta, copies.Best, plain.Best)
		}
	}
}
