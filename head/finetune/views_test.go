package finetune

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// mapsViews returns d with k views per image: view 0 is d's map, views
// 1..k-1 the map plus seeded noise of size noise (0: exact copies).
func mapsViews(d *MapsData, k int, noise float64, seed uint64) *MapsData {
	r := rand.New(rand.NewPCG(seed, 5))
	size := d.mapSize()
	one := make([]float32, size)
	vals := make([]float32, 0, d.Len()*k*size)
	for i := range d.Len() {
		cache.F16ToF32(one, d.Maps[i*size:(i+1)*size])
		for v := range k {
			for _, x := range one {
				if v > 0 {
					x = max(0, x+float32(noise*r.NormFloat64()))
				}
				vals = append(vals, x)
			}
		}
	}
	out := &MapsData{Maps: make([]uint16, len(vals)), Y: d.Y, Classes: d.Classes, Shape: d.Shape, Views: k}
	cache.F32ToF16(out.Maps, vals)
	return out
}

// mapsView is view v of every image of d alone.
func mapsView(d *MapsData, v int) *MapsData {
	size, k := d.mapSize(), d.numViews()
	out := &MapsData{Maps: make([]uint16, 0, d.Len()*size), Y: d.Y, Classes: d.Classes, Shape: d.Shape}
	for i := range d.Len() {
		out.Maps = append(out.Maps, d.Maps[(i*k+v)*size:(i*k+v+1)*size]...)
	}
	return out
}

// Fine-tuning on K copies of every map is fine-tuning on the maps, step
// for step; on distinct views it is reproducible and another run.
func TestFineTuneViews(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	fx := newFTFixture(2, 8, 4, 3, 40, 12)
	s := Settings{Settings: head.Settings{Hidden: 8, LR: 2e-3, Batch: 8, Epochs: 3, Seed: 2}, Runtime: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}}
	run := func(train *MapsData) head.History {
		t.Helper()
		res, err := FineTune(context.Background(), train, fx.val, fx.start, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range res.History {
			res.History[i].Seconds = 0
		}
		return res.History
	}
	plain := run(fx.train)
	copies := run(mapsViews(fx.train, 3, 0, 1))
	for i := range plain {
		if plain[i] != copies[i] {
			t.Errorf("epoch %d: plain %+v, copies %+v", i+1, plain[i], copies[i])
		}
	}
	views := mapsViews(fx.train, 3, 0.5, 1)
	a, b := run(views), run(views)
	if a[2] != b[2] || a[2].Loss == plain[2].Loss {
		t.Errorf("third epoch: %+v and %+v with views, %+v plain", a[2], b[2], plain[2])
	}
	// A holdout of maps with views is measured on their plain view.
	s.Holdout, s.SaveBest = 0.25, true
	plain, copies = run(fx.train), run(mapsViews(fx.train, 3, 0, 1))
	for i := range plain {
		if !plain[i].HasHoldout || plain[i] != copies[i] {
			t.Errorf("holdout, epoch %d: plain %+v, copies %+v", i+1, plain[i], copies[i])
		}
	}
}

// Test-time augmentation of maps: Evaluate on maps with views matches the
// gonum head's Evaluate (checked against Predict) on block5's features of
// each view; PlainView is view 0 alone.
func TestEvaluateMapsViews(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	fx := newFTFixture(3, 8, 4, 3, 8, 30)
	w := head.InitialWeights(8, 0, fx.val.Classes, 4)
	for name, x := range fx.start.Tensors {
		w.Tensors[name] = x
	}
	views := mapsViews(fx.val, 3, 1.0, 2)
	rt := ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}
	tta, err := Evaluate(context.Background(), w, views, 2, rt)
	if err != nil {
		t.Fatal(err)
	}
	var x []float32
	feats := make([][]float32, 3)
	for v := range 3 {
		feats[v] = block5Features(t, fx.start, mapsView(views, v))
	}
	for i := range views.Len() {
		for v := range 3 {
			x = append(x, feats[v][i*8:(i+1)*8]...)
		}
	}
	want, err := head.Evaluate(context.Background(), w, &head.Data{X: x, Y: views.Y, Classes: views.Classes, Views: 3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tta.Accuracy != want.Accuracy || !tol.Close(tta.Loss, want.Loss, 1e-4, 1e-4) {
		t.Errorf("maps with views: accuracy %g loss %g; head on their features %g %g", tta.Accuracy, tta.Loss, want.Accuracy, want.Loss)
	}
	views.PlainView = true
	plain, err := Evaluate(context.Background(), w, views, 2, rt)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Evaluate(context.Background(), w, fx.val, 2, rt)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Accuracy != ref.Accuracy || plain.Loss != ref.Loss {
		t.Errorf("PlainView: accuracy %g loss %g; the plain maps %g %g", plain.Accuracy, plain.Loss, ref.Accuracy, ref.Loss)
	}
}
