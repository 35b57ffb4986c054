package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

func TestWithAdviceCache(t *testing.T) {
	t.Parallel()
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
			got := withAdvice(tc.err)
			if got.Error() != tc.err.Error()+tc.want || !errors.Is(got, tc.err) {
				t.Fatalf("withAdvice(%q) = %q, want the error and %q", tc.err, got, tc.want)
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

func TestWithAdvice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("extract: models: x/spec.json: %w", models.ErrNotPrepared), "(prepare one with `tlearn models prepare`)"},
		{fmt.Errorf("extractor: x.onnx: %w", classifier.ErrNotClassifier), "(make one with `tlearn export`)"},
		{fmt.Errorf("%w: looked for it", ortlib.ErrNotFound), "(run `make setup` in the tlearn checkout (it installs libonnxruntime.so.1 from the npm package onnxruntime-node), or point --ort-lib or $ONNXRUNTIME_SHARED_LIBRARY_PATH at a libonnxruntime.so (a GPU build enables --device cuda))"},
	} {
		got := withAdvice(tc.err)
		if !errors.Is(got, tc.err) || got.Error() != tc.err.Error()+" "+tc.want {
			t.Errorf("withAdvice(%v) = %v, want it with %q", tc.err, got, tc.want)
		}
	}
	other := errors.New("train: no such file")
	if got := withAdvice(other); got != other {
		t.Errorf("withAdvice(%v) = %v, want it unchanged", other, got)
	}
}

// TestNotPreparedAdvice runs a command on a folder that is not a prepared
// model: the library says what is wrong, the CLI what to do.
func TestNotPreparedAdvice(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	fixtures.ClassImages(t, data, "cat", 2, 1)
	fixtures.ClassImages(t, data, "dog", 2, 2)
	code, _, errs := runTlearn(t, "extract", "--model", dir, "--data", data, "--cache", filepath.Join(t.TempDir(), "cache"), "--device", "cpu")
	if code != 1 || !strings.Contains(errs, "not a prepared model folder") || !strings.Contains(errs, "(prepare one with `tlearn models prepare`)") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}
