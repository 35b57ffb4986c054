package head

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
)

func TestTally(t *testing.T) {
	t.Parallel()
	classes := []string{"a", "b", "c"}
	tally := NewTally(classes, 2)
	// label, logits: predictions a, a, b, c, c, b
	for _, ex := range []struct {
		label  int
		logits []float32
	}{
		{0, []float32{3, 1, 0}}, // a → a
		{1, []float32{2, 1, 0}}, // b → a (second: top-2 hit)
		{1, []float32{0, 5, 1}}, // b → b
		{2, []float32{0, 1, 4}}, // c → c
		{0, []float32{0, 1, 2}}, // a → c (third: top-2 miss)
		{2, []float32{1, 1, 0}}, // c → a (tie a,b ranks first; c third)
	} {
		tally.AddLogits(ex.label, ex.logits)
	}
	r := tally.Report()
	wantConf := [][]int{{1, 0, 1}, {1, 1, 0}, {1, 0, 1}}
	for i := range wantConf {
		for j := range wantConf[i] {
			if r.Confusion[i][j] != wantConf[i][j] {
				t.Fatalf("confusion %v, want %v", r.Confusion, wantConf)
			}
		}
	}
	if r.N != 6 || r.Accuracy != 0.5 || r.TopK != 2 || !tol.Close(r.TopKAccuracy, 4.0/6, 1e-12, 0) {
		t.Errorf("N %d accuracy %g top-%d %g", r.N, r.Accuracy, r.TopK, r.TopKAccuracy)
	}
	// a: predicted 3 times, 1 right, 2 true → P 1/3, R 1/2, F1 0.4
	a := r.PerClass[0]
	if !tol.Close(a.Precision, 1.0/3, 1e-12, 0) || a.Recall != 0.5 || !tol.Close(a.F1, 0.4, 1e-12, 0) || a.Support != 2 {
		t.Errorf("class a: %+v", a)
	}
	// b: predicted once, right; 2 true → P 1, R 0.5, F1 2/3
	if b := r.PerClass[1]; b.Precision != 1 || b.Recall != 0.5 || !tol.Close(b.F1, 2.0/3, 1e-12, 0) {
		t.Errorf("class b: %+v", b)
	}
	// Loss of the first example: logsumexp(3,1,0) − 3.
	first := NewTally(classes, 1)
	first.AddLogits(0, []float32{3, 1, 0})
	want := math.Log(math.Exp(3)+math.Exp(1)+1) - 3
	if got := first.Report().Loss; !tol.Close(got, want, 1e-12, 1e-9) {
		t.Errorf("loss %g, want %g", got, want)
	}
	// The same example from probabilities.
	probs := NewTally(classes, 1)
	s := math.Exp(3) + math.Exp(1) + 1
	probs.AddProbs(0, []float32{float32(math.Exp(3) / s), float32(math.Exp(1) / s), float32(1 / s)})
	if got := probs.Report().Loss; !tol.Close(got, want, 1e-6, 1e-6) {
		t.Errorf("loss from probabilities %g, want %g", got, want)
	}

	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"accuracy: 0.5000", "top-2 accuracy: 0.6667", "precision", "0 a", "2 c"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestTallyEmptyClass(t *testing.T) {
	t.Parallel()
	tally := NewTally([]string{"a", "b"}, 0)
	tally.AddLogits(0, []float32{1, 0})
	r := tally.Report()
	if r.TopK != 2 {
		t.Errorf("top-k %d, want it capped at 2 classes", r.TopK)
	}
	if b := r.PerClass[1]; b.Precision != 0 || b.Recall != 0 || b.F1 != 0 || b.Support != 0 {
		t.Errorf("class without examples or predictions: %+v", b)
	}
}
