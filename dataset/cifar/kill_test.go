package cifar

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

// killSettings are the settings of the conversion that
// TestConvertRerunAfterKill kills and reruns.
var killSettings = dataset.ConvertSettings{TrainPerClass: 8, Command: "tlearn data cifar10 (as the CLI records it)"}

// TestConvertRerunAfterKill kills Convert of a python-version .tar.gz with
// SIGKILL in a child process in the middle of writing the images, then
// checks that the output is marked incomplete, that dataset.Open refuses
// it, and that the same conversion, without Overwrite, restarts it and
// writes what an uninterrupted one writes.
func TestConvertRerunAfterKill(t *testing.T) {
	t.Parallel()
	src := writeCIFAR(t, FormatPython, 2, "tar.gz", fakeCIFAR(5, 20, 10))
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := Convert(context.Background(), src, ref, killSettings); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestConvertKillChild$")
	cmd.Env = append(os.Environ(), "TLEARN_CIFAR_KILL_SRC="+src, "TLEARN_CIFAR_KILL_OUT="+out)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, b)
	}
	if n := len(fixtures.Tree(t, out, dataset.MarkerFile)); n == 0 || n >= len(fixtures.Tree(t, ref, dataset.MarkerFile)) {
		t.Fatalf("the child wrote %d files before the kill, want some but not all", n)
	}
	if m, err := dataset.ReadMarker(out); err != nil || m.State != dataset.StateIncomplete {
		t.Fatalf("marker after the kill: %+v, %v", m, err)
	}
	if _, err := dataset.Open(filepath.Join(out, "train"), dataset.Settings{}); !errors.Is(err, dataset.ErrIncomplete) || !strings.Contains(err.Error(), out+" is incomplete") {
		t.Errorf("Open of the killed conversion: %v, want dataset.ErrIncomplete naming %s", err, out)
	}
	sum, err := Convert(context.Background(), src, out, killSettings)
	if err != nil || !sum.Restarted {
		t.Fatalf("rerun: %+v, %v", sum, err)
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
	if m, err := dataset.ReadMarker(out); err != nil || m.State != dataset.StateComplete {
		t.Errorf("marker after the rerun: %+v, %v", m, err)
	}
}

// TestConvertKillChild is the child of TestConvertRerunAfterKill; it does
// nothing unless started by it.
func TestConvertKillChild(t *testing.T) {
	src, out := os.Getenv("TLEARN_CIFAR_KILL_SRC"), os.Getenv("TLEARN_CIFAR_KILL_OUT")
	if src == "" {
		t.Skip("helper process of TestConvertRerunAfterKill")
	}
	s := killSettings
	s.Progress = &fixtures.KillAt{N: 30}
	_, err := Convert(context.Background(), src, out, s)
	t.Fatalf("not killed; Convert returned %v", err)
}
