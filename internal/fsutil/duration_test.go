package fsutil

import "testing"

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    float64
		want string
	}{{0.0123, "12 ms"}, {0.9994, "999 ms"}, {1, "1.0 s"}, {89.94, "89.9 s"}, {95.4, "1m35s"}, {3725, "1h2m5s"}} {
		if got := FormatSeconds(tc.s); got != tc.want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
