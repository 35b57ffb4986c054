package head

import (
	"context"

	"github.com/tlearn/tlearn/head/internal/recipe"
)

// validateViews is validate for data with views: the loss and accuracy of
// the views' mean probabilities.
func (n *network) validateViews(d *Data, smoothing float64) (loss, acc float64) {
	var correct int
	k := d.NumViews()
	step := max(1, n.maxRows/k)
	logp := make([]float32, n.k)
	mean := make([]float64, n.k)
	for r0 := 0; r0 < d.Len(); r0 += step {
		rows := min(step, d.Len()-r0)
		n.forward(d.X[r0*k*n.d:(r0+rows)*k*n.d], rows*k, false, nil)
		for i := range rows {
			recipe.MeanLogProbs(logp, n.z2[i*k*n.kp:], k, n.kp, n.k, mean)
			l, arg := recipe.CrossEntropy(logp, int(d.Y[r0+i]), smoothing)
			loss += l
			if arg == int(d.Y[r0+i]) {
				correct++
			}
		}
	}
	return loss / float64(d.Len()), float64(correct) / float64(d.Len())
}

// evaluateViews is Evaluate for data with views: the report of the views'
// mean probabilities.
func evaluateViews(ctx context.Context, w *Weights, d *Data, topK int) (*Report, error) {
	net, err := inferenceNetwork(w, d)
	if err != nil {
		return nil, err
	}
	defer net.close()
	k := d.NumViews()
	step := max(1, net.maxRows/k)
	logp := make([]float32, net.k)
	mean := make([]float64, net.k)
	t := NewTally(w.Classes, topK)
	for r0 := 0; r0 < d.Len(); r0 += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := min(step, d.Len()-r0)
		net.forward(d.X[r0*k*net.d:(r0+rows)*k*net.d], rows*k, false, nil)
		for i := range rows {
			recipe.MeanLogProbs(logp, net.z2[i*k*net.kp:], k, net.kp, net.k, mean)
			t.AddLogits(int(d.Y[r0+i]), logp)
		}
	}
	return t.Report(), nil
}
