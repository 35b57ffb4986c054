package main

import "testing"

func TestETA(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		remaining, rate float64
		want            string
	}{
		{100, 10, "10s"},
		{4000, 1, "1h6m40s"},
		{5, 0, "?"},
		{0, 3, "0s"},
	} {
		if got := eta(tc.remaining, tc.rate); got != tc.want {
			t.Errorf("eta(%v, %v) = %q, want %q", tc.remaining, tc.rate, got, tc.want)
		}
	}
}
