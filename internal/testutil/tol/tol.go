package tol

import (
	"fmt"
	"math"
)

// Close reports whether got lies within abs + rel·|want| of want. A NaN on
// either side is never close, nor are two equal infinities (their
// difference is NaN): a test that wants an infinity checks it exactly.
func Close(got, want, abs, rel float64) bool {
	return math.Abs(got-want) <= abs+rel*math.Abs(want)
}

// Floats compares got with want element by element by Close's rule. It
// returns nil when both have the same length and every element is close,
// else an error that says how many elements differ and shows the one
// furthest outside its tolerance.
func Floats[F float32 | float64](got, want []F, abs, rel float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	bad, worst, wi := 0, 0.0, -1
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if Close(g, w, abs, rel) {
			continue
		}
		bad++
		excess := math.Abs(g-w) - (abs + rel*math.Abs(w))
		if math.IsNaN(excess) {
			excess = math.Inf(1) // a NaN is the worst difference
		}
		if wi < 0 || excess > worst {
			worst, wi = excess, i
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d values differ; worst [%d] = %.8g, want %.8g (abs %g + rel %g)",
		bad, len(got), wi, float64(got[wi]), float64(want[wi]), abs, rel)
}

// MaxAbs is the largest magnitude in x (0 for an empty x): the scale of an
// absolute tolerance relative to a whole tensor, the right measure for
// float32 sums whose terms cancel.
func MaxAbs[F float32 | float64](x []F) float64 {
	m := 0.0
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}
