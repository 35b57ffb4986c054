package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestPrepareOneWriter holds the lock of a prepared model folder, as a
// prepare running in another process would: Prepare fails before reading
// its input, naming the folder and the holder, and writes nothing. Once the
// lock is released, Prepare removes the temporaries a killed writer left
// (of the folder, and of extractor.onnx and spec.json in it) and no lock
// file stays.
func TestPrepareOneWriter(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "vgg.onnx")
	if err := Save(src, SynthVGG16(SynthSettings{Seed: 3, Width: tinyWidth})); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	out := filepath.Join(root, "model")
	held, err := fsutil.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	var locked *fsutil.LockedError
	_, err = Prepare(context.Background(), src, PrepareSettings{SkipCheck: true}, out)
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || !strings.Contains(err.Error(), out+" is being written by another process") {
		t.Errorf("err = %v, want a *fsutil.LockedError naming %s and pid %d", err, out, os.Getpid())
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused prepare made %s (%v)", out, err)
	}
	held.Unlock()

	stale := []string{
		filepath.Join(root, ".model.partial-1"),
		filepath.Join(out, ".extractor.onnx.tmp-2"),
		filepath.Join(out, ".spec.json.tmp-3"),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("left by a killed prepare"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Prepare(context.Background(), src, PrepareSettings{SkipCheck: true}, out); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, out} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
			}
		}
	}
}
