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

func TestCosine(t *testing.T) {
	const total = 8
	for step, want := range map[int]float64{
		1: 1, 3: 0.5 * (1 + math.Cos(math.Pi*2/8)), 5: 0.5, 8: 0.5 * (1 + math.Cos(math.Pi*7/8)), 9: 0.5 * (1 + math.Cos(math.Pi*7/8)), 0: 1,
	} {
		if got := Cosine(step, total); math.Abs(got-want) > 1e-15 {
			t.Errorf("Cosine(%d, %d) = %g, want %g", step, total, got, want)
		}
	}
	prev := 2.0
	for step := 1; step <= 100; step++ {
		f := Cosine(step, 100)
		if f >= prev || f <= 0 {
			t.Fatalf("Cosine(%d, 100) = %g after %g: want strictly falling and positive", step, f, prev)
		}
		prev = f
	}
	if Cosine(5, 0) != 1 {
		t.Error("no total steps: want the full rate")
	}
}
