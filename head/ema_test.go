package head

import (
	"context"
	"math"
	"slices"
	"testing"
)

// With Settings.EMA the model keeps, step by step, the moving average of
// the parameters that an independent float64 computation gives (warm-up
// decay min(EMA, (1+t)/(10+t))); Validate and Measure evaluate the average
// and leave the trained parameters as they were; Snapshot keeps the
// average.
func TestEMAAveragesTheSteps(t *testing.T) {
	train, val := blobs(60, 6, 3, 2, 1), blobs(30, 6, 3, 2, 2)
	const decay = 0.9
	s := Settings{Hidden: 8, LR: 5e-2, Batch: 10, Epochs: 1, EMA: decay, NoDropout: true}.Resolve()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	rows := make([]int32, train.Len())
	for i := range rows {
		rows[i] = int32(i)
	}
	m := newHeadModel(train, val, rows, s)
	want := make([]float64, len(m.net.params))
	for i, p := range m.net.params {
		want[i] = float64(p)
	}
	for step := 1; step <= 6; step++ {
		if _, _, err := m.Step(context.Background(), rows[(step-1)*10:step*10]); err != nil {
			t.Fatal(err)
		}
		d := math.Min(decay, float64(1+step)/float64(10+step))
		for i, p := range m.net.params {
			want[i] = d*want[i] + (1-d)*float64(p)
		}
	}
	var worst float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(m.ema[i])-want[i]))
	}
	if worst > 1e-5 {
		t.Fatalf("the moving average is %g away from the float64 one", worst)
	}
	if slices.Equal(m.ema, m.net.params) {
		t.Fatal("the average equals the trained parameters: nothing to test")
	}

	trained := slices.Clone(m.net.params)
	l, a, err := m.Validate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.net.params, trained) {
		t.Fatal("Validate left the average in place of the trained parameters")
	}
	// The same numbers from a network that holds the average itself.
	plain := newNetwork(train.Dim(), s.Hidden, len(train.Classes), evalRows, false, s.backend())
	defer plain.close()
	copy(plain.params, m.ema)
	wl, wa := plain.validate(val, 0)
	if l != wl || a != wa {
		t.Fatalf("Validate gave loss %g, accuracy %g; the average's are %g, %g", l, a, wl, wa)
	}
	if _, _, err := m.Measure(context.Background(), rows[:20]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.net.params, trained) {
		t.Fatal("Measure left the average in place of the trained parameters")
	}
	if err := m.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.best, m.ema) {
		t.Fatal("Snapshot did not keep the average")
	}
}

// A run with EMA returns the average's weights: those of the kept epoch
// with SaveBest, those of the last epoch's average without. EMA 0 is the
// plain run; a decay outside [0, 1) is refused.
func TestTrainWithEMAReturnsTheAverage(t *testing.T) {
	train, val := blobs(80, 6, 3, 2, 1), blobs(30, 6, 3, 2, 2)
	base := Settings{Hidden: 8, LR: 5e-2, Batch: 10, Epochs: 4, Seed: 3}
	plain, err := Train(context.Background(), train, val, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	withEMA := base
	withEMA.EMA = 0.95
	avg, err := Train(context.Background(), train, val, withEMA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(plain.Weights.Tensors[HiddenWeight].Data, avg.Weights.Tensors[HiddenWeight].Data) {
		t.Fatal("EMA returned the plain run's weights")
	}
	// Evaluating the returned weights gives the last epoch's recorded
	// validation accuracy: the history measured the same average.
	rep, err := Evaluate(context.Background(), avg.Weights, val, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := avg.History[len(avg.History)-1]; rep.Accuracy != last.ValAccuracy {
		t.Fatalf("the returned weights score %g, the last epoch recorded %g", rep.Accuracy, last.ValAccuracy)
	}
	for _, bad := range []float64{-0.1, 1, math.NaN()} {
		s := base
		s.EMA = bad
		if err := s.Validate(); err == nil {
			t.Errorf("EMA %g validated", bad)
		}
	}
}
