package mnist

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/dataset"
)

// TestConvertRerunAfterKill kills Convert with SIGKILL in a child process
// in the middle of writing the images, then checks that the output is
// marked incomplete, that dataset.Open refuses its parts with an
// *IncompleteError that names the folder and no flag, and that the same
// conversion, without Overwrite, restarts it and writes what an
// uninterrupted one writes.
func TestConvertRerunAfterKill(t *testing.T) {
	t.Parallel()
	src := writeMNIST(t, makeMNIST(300, 28, 28, 1), makeMNIST(100, 28, 28, 4), false)
	s := dataset.ConvertSettings{TestPerClass: 5, Command: "tlearn data mnist (as the CLI records it)"}
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := Convert(context.Background(), src, ref, s); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestConvertKillChild$")
	cmd.Env = append(os.Environ(), "TLEARN_MNIST_KILL_SRC="+src, "TLEARN_MNIST_KILL_OUT="+out)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, b)
	}
	if n := len(fixtures.Tree(t, out, dataset.MarkerFile)); n == 0 || n >= len(fixtures.Tree(t, ref, dataset.MarkerFile)) {
		t.Fatalf("the child wrote %d files before the kill, want some but not all", n)
	}
	m, err := dataset.ReadMarker(out)
	if err != nil || m.State != dataset.StateIncomplete || m.Command != s.Command {
		t.Fatalf("marker after the kill: %+v, %v", m, err)
	}
	for _, part := range []string{"train", "test"} {
		_, err := dataset.Open(filepath.Join(out, part), dataset.Settings{})
		var ie *dataset.IncompleteError
		if !errors.As(err, &ie) || ie.Dir != out || ie.Command != s.Command || !errors.Is(err, dataset.ErrIncomplete) ||
			!strings.Contains(err.Error(), out+" is incomplete") || strings.Contains(err.Error(), "--") {
			t.Errorf("Open %s: %v, want an *IncompleteError about %s that names no flag", part, err, out)
		}
	}

	// Other settings do not restart it.
	other := s
	other.TestPerClass = 4
	if _, err := Convert(context.Background(), src, out, other); !errors.Is(err, dataset.ErrNotEmpty) || !strings.Contains(err.Error(), "incomplete dataset of other settings") {
		t.Errorf("rerun with other settings: %v", err)
	}
	sum, err := Convert(context.Background(), src, out, s)
	if err != nil || !sum.Restarted {
		t.Fatalf("rerun: %+v, %v", sum, err)
	}
	if m, err := dataset.ReadMarker(out); err != nil || m.State != dataset.StateComplete {
		t.Errorf("marker after the rerun: %+v, %v", m, err)
	}
	want, got := fixtures.Tree(t, ref, dataset.MarkerFile), fixtures.Tree(t, out, dataset.MarkerFile)
	if len(got) != len(want) {
		t.Errorf("rerun wrote %d files, an uninterrupted run %d", len(got), len(want))
	}
	for rel, b := range want {
		if got[rel] != b {
			t.Errorf("%s differs from an uninterrupted run's", rel)
		}
	}
	if _, err := dataset.Open(filepath.Join(out, "train"), dataset.Settings{}); err != nil {
		t.Errorf("Open after the rerun: %v", err)
	}
	if _, err := Convert(context.Background(), src, out, s); !errors.Is(err, dataset.ErrNotEmpty) || !strings.Contains(err.Error(), "is a complete dataset") {
		t.Errorf("rerun of the complete dataset: %v", err)
	}
}

// TestConvertKillChild is the child of TestConvertRerunAfterKill; it does
// nothing unless started by it.
func TestConvertKillChild(t *testing.T) {
	src, out := os.Getenv("TLEARN_MNIST_KILL_SRC"), os.Getenv("TLEARN_MNIST_KILL_OUT")
	if src == "" {
		t.Skip("helper process of TestConvertRerunAfterKill")
	}
	_, err := Convert(context.Background(), src, out, dataset.ConvertSettings{
		TestPerClass: 5, Command: "tlearn data mnist (as the CLI records it)", Progress: &fixtures.KillAt{N: 100},
	})
	t.Fatalf("not killed; Convert returned %v", err)
}
