package head

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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

// manyClassTally counts one example per class of k classes, class i
// predicted as i+1 (mod k) except every third, predicted right; classes 0
// and 1 get extra examples confused with class 2, the largest confusions.
func manyClassTally(k int) *Tally {
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("c%04d", i)
	}
	tally := NewTally(classes, 5)
	probs := make([]float32, k)
	add := func(label, pred int) {
		clear(probs)
		probs[pred] = 1
		tally.AddProbs(label, probs)
	}
	for i := range k {
		if i%3 == 0 {
			add(i, i)
		} else {
			add(i, (i+1)%k)
		}
	}
	for range 3 {
		add(0, 2)
	}
	for range 2 {
		add(1, 2)
	}
	return tally
}

// TestReportBoundedWithManyClasses checks that a report's size does not
// grow with the square of the class count: above MaxConfusionClasses it
// keeps the largest confusions instead of the matrix; per-class metrics
// (linear) stay.
func TestReportBoundedWithManyClasses(t *testing.T) {
	t.Parallel()
	const k = 3000
	r := manyClassTally(k).Report()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 200*k {
		t.Fatalf("report of %d classes is %d bytes of JSON, want it linear in the class count", k, len(b))
	}
	if len(r.PerClass) != k || r.PerClass[0].Support != 4 || r.PerClass[0].Recall != 0.25 {
		t.Errorf("per-class metrics %+v, want %d classes, class 0 with support 4, recall 0.25", r.PerClass[:1], k)
	}
	if r.Confusion != nil || len(r.TopConfusions) != MaxTopConfusions {
		t.Fatalf("confusion %d rows, top confusions %d; want none and %d", len(r.Confusion), len(r.TopConfusions), MaxTopConfusions)
	}
	want := []Confusion{{"c0000", "c0002", 3}, {"c0001", "c0002", 3}, {"c0002", "c0003", 1}}
	if got := r.Confusions(3); !slices.Equal(got, want) {
		t.Errorf("top confusions %v, want %v", got, want)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "most frequent confusions") || text.Len() > 200*k {
		t.Errorf("text report (%d bytes, %v) should list the top confusions, not the matrix", text.Len(), err)
	}
}

// TestConfusionsFromMatrix checks that Confusions reads a small report's
// matrix in the same order as a large report's list.
func TestConfusionsFromMatrix(t *testing.T) {
	t.Parallel()
	r := manyClassTally(MaxConfusionClasses).Report()
	if len(r.Confusion) != MaxConfusionClasses || r.TopConfusions != nil {
		t.Fatalf("%d rows, %d top confusions; want the full matrix only", len(r.Confusion), len(r.TopConfusions))
	}
	want := []Confusion{{"c0000", "c0002", 3}, {"c0001", "c0002", 3}, {"c0002", "c0003", 1}}
	if got := r.Confusions(3); !slices.Equal(got, want) {
		t.Errorf("top confusions %v, want %v", got, want)
	}
}
