package recipe

import (
	"math"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// TestMaskIsApply: Mask draws the units that Apply keeps, with the same
// scale, from the same bits.
func TestMaskIsApply(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 7, 64} {
		z := make([]float32, n)
		for i := range z {
			z[i] = 1
		}
		gate := make([]float32, n)
		NewDropout(0.4, 3).Apply(z, gate)
		mask := make([]float32, n)
		NewDropout(0.4, 3).Mask(mask)
		for i := range mask {
			if mask[i] != gate[i] {
				t.Fatalf("n=%d: unit %d: mask %g, Apply's gate %g", n, i, mask[i], gate[i])
			}
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	t.Parallel()
	z := []float32{1, 3, 2}
	lse := math.Log(math.Exp(1) + math.Exp(3) + math.Exp(2))
	for _, tc := range []struct {
		desc      string
		y         int
		smoothing float64
		want      float64
	}{
		{"one-hot", 0, 0, lse - 1},
		{"smoothed", 2, 0.3, lse - 0.1*6 - 0.7*2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, arg := CrossEntropy(z, tc.y, tc.smoothing)
			if !tol.Close(got, tc.want, 1e-12, 0) || arg != 1 {
				t.Errorf("loss %g, arg %d; want %g, 1", got, arg, tc.want)
			}
		})
	}
}
