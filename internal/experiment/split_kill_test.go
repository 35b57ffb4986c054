package experiment

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

func splitKillData(root string, t *testing.T) (*dataset.Source, SplitSettings) {
	data := filepath.Join(root, "data")
	if _, err := os.Stat(data); err != nil {
		fixtures.ClassImages(t, data, "ant", 12, 1)
		fixtures.ClassImages(t, data, "bee", 9, 2)
	}
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return src, SplitSettings{Out: filepath.Join(root, "split"), Val: 0.25, Seed: 3, Command: "tlearn data split (as the CLI records it)"}
}

// TestSplitRerunAfterKill kills SplitData with SIGKILL in a child process
// halfway through the files, then checks that the output is marked
// incomplete, that dataset.Open refuses its train part, and that the same
// split, without Overwrite, restarts it to an uninterrupted split's files.
func TestSplitRerunAfterKill(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src, s := splitKillData(root, t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSplitKillChild$")
	cmd.Env = append(os.Environ(), "TLEARN_SPLIT_KILL_ROOT="+root)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, b)
	}
	if n := len(fixtures.Tree(t, s.Out, dataset.MarkerFile)); n == 0 || n >= len(src.Items) {
		t.Fatalf("the child linked %d of %d files before the kill, want some but not all", n, len(src.Items))
	}
	if m, err := dataset.ReadMarker(s.Out); err != nil || m.State != dataset.StateIncomplete {
		t.Fatalf("marker after the kill: %+v, %v", m, err)
	}
	if _, err := dataset.Open(filepath.Join(s.Out, "train"), dataset.Settings{}); !errors.Is(err, dataset.ErrIncomplete) || !strings.Contains(err.Error(), s.Out) {
		t.Errorf("Open of the killed split: %v, want dataset.ErrIncomplete naming %s", err, s.Out)
	}
	res, err := SplitData(context.Background(), src, s, nil)
	if err != nil || !res.Restarted {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	ref := s
	ref.Out = filepath.Join(root, "ref")
	if _, err := SplitData(context.Background(), src, ref, nil); err != nil {
		t.Fatal(err)
	}
	want, got := fixtures.Tree(t, ref.Out, dataset.MarkerFile), fixtures.Tree(t, s.Out, dataset.MarkerFile)
	if len(got) != len(want) {
		t.Errorf("rerun wrote %d files, an uninterrupted split %d", len(got), len(want))
	}
	for rel, b := range want {
		if got[rel] != b {
			t.Errorf("%s differs from an uninterrupted split's", rel)
		}
	}
	if _, err := dataset.Open(filepath.Join(s.Out, "val"), dataset.Settings{}); err != nil {
		t.Errorf("Open after the rerun: %v", err)
	}
}

// TestSplitKillChild is the child of TestSplitRerunAfterKill; it does
// nothing unless started by it.
func TestSplitKillChild(t *testing.T) {
	root := os.Getenv("TLEARN_SPLIT_KILL_ROOT")
	if root == "" {
		t.Skip("helper process of TestSplitRerunAfterKill")
	}
	src, s := splitKillData(root, t)
	_, err := SplitData(context.Background(), src, s, &fixtures.KillAt{N: 10})
	t.Fatalf("not killed; SplitData returned %v", err)
}
