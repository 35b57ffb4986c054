package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestSecondWriterAdvice holds the lock of a run folder, as a train
// running in another process would, and checks that a second train into
// it exits 1 at once, naming the holder's pid and command and what to do.
func TestSecondWriterAdvice(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	out := filepath.Join(root, "run")
	held, err := fsutil.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	code, _, errs := runTlearn(t, "train", "--train", train, "--val", val, "--out", out, "--epochs", "3", "--hidden", "8", "--threads", "1")
	for _, want := range []string{out + " is being written by another process", "pid " + strconv.Itoa(os.Getpid()) + ": " + strings.Join(os.Args, " "), "wait for that command to finish"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if code != 1 || strings.Contains(errs, "epoch 1/") {
		t.Errorf("exit %d, want 1 before the first epoch:\n%s", code, errs)
	}
}
