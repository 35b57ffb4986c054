package finetune

import (
	"context"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/internal/recipe"
)

// validateViews is validate for maps with views: on view 0 alone with
// d.PlainView, else on the mean probabilities of the views (test-time
// augmentation), in batches of whole images (at least one image, else
// about bs maps).
func validateViews(ctx context.Context, sess *session, d *MapsData, bs int, smoothing float64, tally *head.Tally) (loss, acc float64, err error) {
	n, nc, k := d.Len(), len(d.Classes), d.numViews()
	used := k // views read per image
	if d.PlainView {
		used = 1
	}
	step := max(1, bs/used)
	rows := make([]int32, 0, step*used)
	logp := make([]float32, nc)
	mean := make([]float64, nc)
	sc := scorer{smoothing: smoothing, tally: tally}
	for r0 := 0; r0 < n; r0 += step {
		rows = rows[:0]
		for i := r0; i < min(r0+step, n); i++ {
			for v := range used {
				rows = append(rows, int32(i*k+v))
			}
		}
		b, err := sess.batch(len(rows))
		if err != nil {
			return 0, 0, err
		}
		b.fillMaps(d, rows)
		if err := sess.evaluate(ctx, b); err != nil {
			return 0, 0, err
		}
		logits := b.evalLogits()
		for i := range len(rows) / used {
			z := logits[i*used*nc : (i+1)*used*nc]
			if used > 1 {
				recipe.MeanLogProbs(logp, z, used, nc, nc, mean)
				z = logp
			}
			sc.add(z, int(d.Y[r0+i]))
		}
	}
	return sc.mean(n)
}
