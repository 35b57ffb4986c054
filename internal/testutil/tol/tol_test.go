package tol

import (
	"math"
	"strings"
	"testing"
)

func TestClose(t *testing.T) {
	t.Parallel()
	inf, nan := math.Inf(1), math.NaN()
	for _, tc := range []struct {
		desc                string
		got, want, abs, rel float64
		close               bool
	}{
		{"equal, no tolerance", 1.5, 1.5, 0, 0, true},
		{"absolute, at the edge", 1.25, 1, 0.25, 0, true},
		{"absolute, beyond", 1.25, 1, 0.125, 0, false},
		{"relative to want", 110, 100, 0, 0.1, true},
		{"relative to want, not got", 100, 110, 0, 0.09, false},
		{"both add up", 1.5, 1, 0.25, 0.25, true},
		{"NaN got", nan, 1, 1, 1, false},
		{"NaN want", 1, nan, 1, 1, false},
		{"equal infinities", inf, inf, 1, 1, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := Close(tc.got, tc.want, tc.abs, tc.rel); got != tc.close {
				t.Errorf("Close(%g, %g, %g, %g) = %v", tc.got, tc.want, tc.abs, tc.rel, got)
			}
		})
	}
}

func TestFloats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		got, want []float32
		abs, rel  float64
		err       string // "" for nil
	}{
		{"all close", []float32{1, 2, 3}, []float32{1, 2.001, 3}, 1e-3, 0, ""},
		{"lengths", []float32{1}, []float32{1, 2}, 1, 1, "1 values, want 2"},
		{"worst shown", []float32{1, 5, 2.5}, []float32{1, 2, 2}, 0.1, 0, "2 of 3 values differ; worst [1] = 5, want 2"},
		{"NaN is worst", []float32{9, float32(math.NaN()), 7}, []float32{1, 1, 1}, 0, 0, "3 of 3 values differ; worst [1] = NaN"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := Floats(tc.got, tc.want, tc.abs, tc.rel)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Floats = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestMaxAbs(t *testing.T) {
	t.Parallel()
	if got := MaxAbs([]float64{1, -3, 2}); got != 3 {
		t.Errorf("MaxAbs = %g, want 3", got)
	}
	if got := MaxAbs[float32](nil); got != 0 {
		t.Errorf("MaxAbs(nil) = %g, want 0", got)
	}
}
