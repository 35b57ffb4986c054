package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

func TestWithAdvice(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("extract: models: x/spec.json: %w", models.ErrNotPrepared), "(prepare one with `tlearn models prepare`)"},
		{fmt.Errorf("extractor: x.onnx: %w", classifier.ErrNotClassifier), "(make one with `tlearn export`)"},
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
	writeClassImages(t, data, "cat", 2, 1)
	writeClassImages(t, data, "dog", 2, 2)
	code, _, errs := runTlearn(t, "extract", "--model", dir, "--data", data, "--cache", filepath.Join(dir, "cache"), "--device", "cpu")
	if code != 1 || !strings.Contains(errs, "not a prepared model folder") || !strings.Contains(errs, "(prepare one with `tlearn models prepare`)") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}
