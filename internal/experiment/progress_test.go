package experiment

import (
	"testing"

	"github.com/tlearn/tlearn/internal/fsutil"
)

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    float64
		want string
	}{
		{0.0123, "12 ms"},
		{0.9994, "999 ms"},
		{1, "1.0 s"},
		{89.94, "89.9 s"},
		{90, "1m30s"},
		{3725.4, "1h2m5s"},
	} {
		if got := fsutil.FormatSeconds(tc.s); got != tc.want {
			t.Errorf("fsutil.FormatSeconds(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
