package head

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is a classifier's evaluation on a labelled set.
type Report struct {
	Classes      []string       `json:"classes"`
	N            int            `json:"n"`
	Accuracy     float64        `json:"accuracy"`
	Loss         float64        `json:"loss"` // mean categorical cross-entropy, no label smoothing or class weights
	TopK         int            `json:"top_k"`
	TopKAccuracy float64        `json:"top_k_accuracy"`
	MacroF1      float64        `json:"macro_f1"`
	PerClass     []ClassMetrics `json:"per_class"`
	// Confusion is the [true class][predicted class] counts, up to
	// MaxConfusionClasses classes; nil above, where it would grow with the
	// square of the class count (800 MB of JSON at 10,000 classes) and
	// TopConfusions stands in for it.
	Confusion [][]int `json:"confusion,omitempty"`
	// TopConfusions are the MaxTopConfusions largest off-diagonal counts
	// (most first), set only where Confusion is nil.
	TopConfusions []Confusion `json:"top_confusions,omitempty"`
}

// MaxConfusionClasses is the largest class count whose full confusion
// matrix a Report keeps; MaxTopConfusions is how many of the largest
// confusions it keeps above that. Both bound what is written and drawn
// per run, whatever the class count.
const (
	MaxConfusionClasses = 50
	MaxTopConfusions    = 50
)

// Confusion is how often examples of class True were predicted as class
// Predicted (True != Predicted).
type Confusion struct {
	True      string `json:"true"`
	Predicted string `json:"predicted"`
	Count     int    `json:"count"`
}

// Confusions returns the n largest off-diagonal counts of r, most first
// (ties: by true class, then predicted class, in class order), from
// Confusion or, where that is nil, TopConfusions.
func (r *Report) Confusions(n int) []Confusion {
	if r.Confusion == nil {
		return r.TopConfusions[:min(n, len(r.TopConfusions))]
	}
	var cs []cell
	for i, row := range r.Confusion {
		for j, c := range row {
			if i != j && c > 0 {
				cs = append(cs, cell{i, j, c})
			}
		}
	}
	return topCells(cs, r.Classes, n)
}

// cell is one off-diagonal count of a confusion matrix.
type cell struct{ true, pred, n int }

func topCells(cs []cell, classes []string, n int) []Confusion {
	slices.SortFunc(cs, func(a, b cell) int {
		if a.n != b.n {
			return cmp.Compare(b.n, a.n)
		}
		if a.true != b.true {
			return cmp.Compare(a.true, b.true)
		}
		return cmp.Compare(a.pred, b.pred)
	})
	out := make([]Confusion, 0, min(n, len(cs)))
	for _, c := range cs[:min(n, len(cs))] {
		out = append(out, Confusion{True: classes[c.true], Predicted: classes[c.pred], Count: c.n})
	}
	return out
}

// ClassMetrics are one class's precision, recall and F1 (each 0 where its
// denominator is 0, as scikit-learn's zero_division=0) and its number of
// true examples.
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Tally accumulates predictions into a Report, one example at a time, so
// that callers can stream batches from any model.
type Tally struct {
	classes   []string
	topK      int
	n, topHit int
	loss      float64
	// The confusion counts, kept in memory linear in the class count and
	// the examples (not k², 800 MB at 10,000 classes): the diagonal, the
	// row and column sums, and the off-diagonal counts that occur.
	diag, rows, cols []int
	off              map[int64]int // true*k + predicted
	scratch          []float64
}

// NewTally starts a tally over the classes; topK < 1 means 5 (capped at the
// number of classes).
func NewTally(classes []string, topK int) *Tally {
	if topK < 1 {
		topK = 5
	}
	k := len(classes)
	return &Tally{classes: classes, topK: min(topK, k), diag: make([]int, k), rows: make([]int, k), cols: make([]int, k),
		off: map[int64]int{}, scratch: make([]float64, k)}
}

// AddLogits counts one example from its unnormalised scores. It panics when
// len(logits) is not the number of classes or label is out of range.
func (t *Tally) AddLogits(label int, logits []float32) {
	p := t.scratch[:len(t.classes)]
	mx := math.Inf(-1)
	for i, v := range logits[:len(p)] {
		p[i] = float64(v)
		mx = max(mx, p[i])
	}
	var s float64
	for _, v := range p {
		s += math.Exp(v - mx)
	}
	t.add(label, p, mx+math.Log(s)-p[label])
}

// AddProbs counts one example from its class probabilities; the loss clips
// them at 1e-7 as Keras does.
func (t *Tally) AddProbs(label int, probs []float32) {
	p := t.scratch[:len(t.classes)]
	for i, v := range probs[:len(p)] {
		p[i] = float64(v)
	}
	t.add(label, p, -math.Log(min(max(p[label], 1e-7), 1-1e-7)))
}

func (t *Tally) add(label int, scores []float64, loss float64) {
	pred, rank := 0, 0
	for i, v := range scores {
		if v > scores[pred] {
			pred = i
		}
		// Ties rank the lower class index first, as the argmax does.
		if v > scores[label] || (v == scores[label] && i < label) {
			rank++
		}
	}
	t.rows[label]++
	t.cols[pred]++
	if pred == label {
		t.diag[label]++
	} else {
		t.off[int64(label)*int64(len(t.classes))+int64(pred)]++
	}
	if rank < t.topK {
		t.topHit++
	}
	t.loss += loss
	t.n++
}

// Report computes the metrics of the examples counted so far.
func (t *Tally) Report() *Report {
	k := len(t.classes)
	r := &Report{Classes: t.classes, N: t.n, TopK: t.topK, PerClass: make([]ClassMetrics, k)}
	correct := 0
	for i := range k {
		correct += t.diag[i]
	}
	if k <= MaxConfusionClasses {
		r.Confusion = make([][]int, k)
		for i := range k {
			r.Confusion[i] = make([]int, k)
			r.Confusion[i][i] = t.diag[i]
		}
		for key, c := range t.off {
			r.Confusion[key/int64(k)][key%int64(k)] = c
		}
	} else {
		cs := make([]cell, 0, len(t.off))
		for key, c := range t.off {
			cs = append(cs, cell{int(key / int64(k)), int(key % int64(k)), c})
		}
		r.TopConfusions = topCells(cs, t.classes, MaxTopConfusions)
	}
	if t.n > 0 {
		r.Accuracy = float64(correct) / float64(t.n)
		r.TopKAccuracy = float64(t.topHit) / float64(t.n)
		r.Loss = t.loss / float64(t.n)
	}
	for c := range k {
		tp, support, predicted := t.diag[c], t.rows[c], t.cols[c]
		m := ClassMetrics{Class: t.classes[c], Support: support}
		if predicted > 0 {
			m.Precision = float64(tp) / float64(predicted)
		}
		if support > 0 {
			m.Recall = float64(tp) / float64(support)
		}
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		r.PerClass[c] = m
		r.MacroF1 += m.F1 / float64(k)
	}
	return r
}

// WriteText prints the report for people: the summary, a per-class table
// and the confusion matrix with class names.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "examples: %d\naccuracy: %.4f\ntop-%d accuracy: %.4f\nloss: %.4f\nmacro F1: %.4f\n\n",
		r.N, r.Accuracy, r.TopK, r.TopKAccuracy, r.Loss, r.MacroF1)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tprecision\trecall\tF1\tsupport\t")
	for _, m := range r.PerClass {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t\n", m.Class, m.Precision, m.Recall, m.F1, m.Support)
	}
	tw.Flush()
	if r.Confusion == nil {
		fmt.Fprintf(&b, "\n%d classes: the %d most frequent confusions instead of the confusion matrix\n", len(r.Classes), len(r.TopConfusions))
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "true class\tpredicted class\tcount")
		for _, c := range r.TopConfusions {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", c.True, c.Predicted, c.Count)
		}
		tw.Flush()
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("\nconfusion matrix (rows: true class, columns: predicted class)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	b2 := []string{""}
	for i := range r.Classes {
		b2 = append(b2, fmt.Sprint(i))
	}
	fmt.Fprintln(tw, strings.Join(b2, "\t")+"\t")
	for i, row := range r.Confusion {
		fmt.Fprintf(tw, "%d %s", i, r.Classes[i])
		for _, c := range row {
			fmt.Fprintf(tw, "\t%d", c)
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
