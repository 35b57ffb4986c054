package realdata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.onnx"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvShared, dir)
	if p, err := path("a.onnx"); err != nil || p != filepath.Join(dir, "a.onnx") {
		t.Errorf("path = %q, %v", p, err)
	}
	_, err := path("models", "b.onnx")
	if want := filepath.Join(dir, "models", "b.onnx"); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), EnvShared) {
		t.Errorf("missing file: %v, want an error naming %s and $%s", err, want, EnvShared)
	}
}

func TestDirNextToTheCheckout(t *testing.T) {
	t.Setenv(EnvShared, "")
	d, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	// This package sits at internal/testutil/realdata below the root.
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "..", "..", "..", "..", "shared"); d != filepath.Clean(want) {
		t.Errorf("Dir = %s, want %s", d, want)
	}
}
