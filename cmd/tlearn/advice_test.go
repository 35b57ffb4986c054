package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/cache"
)

func TestAdvise(t *testing.T) {
	other := errors.New("train: something else")
	for _, tc := range []struct {
		desc string
		err  error
		want string // "" for no advice
	}{
		{"corrupt", fmt.Errorf("train: %w: x/features.npy: truncated", cache.ErrCorrupt), " (rebuild it with tlearn extract --force)"},
		{"incomplete", fmt.Errorf("cache: x: 3 of 9 rows done: %w", cache.ErrIncomplete), " (run the same tlearn extract command again to resume it)"},
		{"not a cache", fmt.Errorf("%w: x", cache.ErrNotCache), " (make one with tlearn extract)"},
		{"other", other, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := advise(tc.err)
			if got.Error() != tc.err.Error()+tc.want || !errors.Is(got, tc.err) {
				t.Fatalf("advise(%q) = %q, want the error and %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestAdviseThroughRun checks that a command's error reaches the user with
// the advice: cache info of a folder that is no cache.
func TestAdviseThroughRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nocache")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runTlearn(t, "cache", "info", dir)
	if code != 1 || !strings.Contains(errs, "not a cache folder") || !strings.HasSuffix(errs, "(make one with tlearn extract)\n") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
