package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// TestMarkerStates follows an output through PrepareOutput and
// FinishOutput: incomplete datasets are refused by Open and restarted only
// by the same Origin; complete ones, and those marked before the states
// existed, open and are not replaced without overwrite.
func TestMarkerStates(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src := makeDataset(t, map[string]int{"a/1.png": 4, "b/1.png": 4})
	out := filepath.Join(root, "out")
	o := Origin{Made: "a test conversion", Command: "tlearn data test"}
	part := filepath.Join(out, "train")
	writePart := func() {
		fixtures.WriteFile(t, filepath.Join(part, "a", "1.png"), encode(t, "png", testImage(4, 4, 1)))
		fixtures.WriteFile(t, filepath.Join(part, "b", "1.png"), encode(t, "png", testImage(4, 4, 2)))
	}

	if restarted, err := PrepareOutput(src, out, false, o, "train", "test"); err != nil || restarted {
		t.Fatalf("new output: %v, %v", restarted, err)
	}
	writePart()
	for _, dir := range []string{part, out} {
		_, err := Open(dir, Settings{})
		var ie *IncompleteError
		if !errors.As(err, &ie) || ie.Dir != out || ie.Command != o.Command || strings.Contains(err.Error(), "--") {
			t.Errorf("Open %s while incomplete: %v", dir, err)
		}
	}
	// classify's listing: a class folder inside a part, two levels down.
	if _, err := OpenFiles([]string{filepath.Join(part, "a")}, Settings{}); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), out+" is incomplete") {
		t.Errorf("OpenFiles of a class folder while incomplete: %v", err)
	}
	if _, err := Open(filepath.Join(out, "test"), Settings{}); !errors.Is(err, ErrIncomplete) {
		t.Errorf("Open of a part not yet made: %v, want ErrIncomplete", err)
	}
	if _, err := PrepareOutput(src, out, false, Origin{Made: "another"}, "train", "test"); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("other origin: %v", err)
	}
	restarted, err := PrepareOutput(src, out, false, o, "train", "test")
	if err != nil || !restarted {
		t.Fatalf("same origin: %v, %v", restarted, err)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restart left %s: %v", part, err)
	}
	writePart()
	if err := FinishOutput(out); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadMarker(out); err != nil || m.State != StateComplete || m.Made != o.Made {
		t.Errorf("marker %+v, %v", m, err)
	}
	if _, err := Open(part, Settings{}); err != nil {
		t.Errorf("Open when complete: %v", err)
	}
	if _, err := OpenFiles([]string{filepath.Join(part, "a")}, Settings{}); err != nil {
		t.Errorf("OpenFiles when complete: %v", err)
	}
	if _, err := PrepareOutput(src, out, false, o, "train", "test"); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "is a complete dataset (a test conversion)") {
		t.Errorf("complete, same origin: %v", err)
	}

	// A marker from before the states: complete, still an input.
	fixtures.WriteFile(t, filepath.Join(out, MarkerFile), []byte("written by tlearn data; a rerun with --force replaces train/ and test/\n"))
	if m, err := ReadMarker(out); err != nil || m.State != StateComplete {
		t.Errorf("old marker: %+v, %v", m, err)
	}
	if _, err := Open(part, Settings{}); err != nil {
		t.Errorf("Open with an old marker: %v", err)
	}
	if _, err := PrepareOutput(src, out, false, o, "train", "test"); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("old marker without overwrite: %v", err)
	}
	if restarted, err := PrepareOutput(src, out, true, o, "train", "test"); err != nil || restarted {
		t.Errorf("old marker with overwrite: %v, %v", restarted, err)
	}
}
