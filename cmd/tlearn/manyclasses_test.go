package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// TestTrainManyClassesFinishesAndStops runs the real binary on 10,000
// one-image classes: train finishes promptly with a metrics.json linear in
// the class count (it once drew the whole confusion matrix for minutes
// after writing 1.1 GB of it), and SIGTERM at any moment of such a run,
// its last stage included, stops it within exitWithin with nothing left
// half-written.
func TestTrainManyClassesFinishesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains on 10,000 classes")
	}
	const k = 10000
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("c%05d", i)
	}
	root := t.TempDir()
	train, val := filepath.Join(root, "train"), filepath.Join(root, "val")
	fixtures.FeatureCache(t, train, k, 8, classes, "aaaa", 1)
	fixtures.FeatureCache(t, val, k, 8, classes, "aaaa", 2)
	bin := buildTlearn(t)
	args := func(out string) []string {
		return []string{"train", "--train", train, "--val", val, "--out", out, "--hidden", "4", "--epochs", "1", "--threads", "1", "-q"}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(root, "run")
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, args(out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train of %d classes: %v after %v\n%s", k, err, time.Since(start).Round(time.Millisecond), b)
	}
	took := time.Since(start)
	t.Logf("train of %d classes took %v", k, took.Round(time.Millisecond))
	st, err := os.Stat(filepath.Join(out, rundir.MetricsFile))
	if err != nil || st.Size() > 200*k {
		t.Fatalf("metrics.json of %d classes: %v, %v bytes; want at most %d", k, err, st, 200*k)
	}

	// Signals at a half and at nine tenths of the run.
	for i, frac := range []float64{0.5, 0.9} {
		dir := filepath.Join(root, fmt.Sprintf("sig%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "run")
		cmd := exec.Command(bin, args(out)...)
		var errs syncBuffer
		cmd.Stderr = &errs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			continue // finished before the signal: nothing to check
		case <-time.After(time.Duration(frac * float64(took))):
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(exitWithin):
			cmd.Process.Kill()
			<-done
			t.Fatalf("SIGTERM at %.0f%% of the run: still running %v later\n%s", 100*frac, exitWithin, errs.String())
		}
		t.Logf("SIGTERM at %.0f%% of the run: exit %d", 100*frac, cmd.ProcessState.ExitCode())
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted && code != 0 {
			t.Errorf("SIGTERM at %.0f%% of the run: exit %d, want %d (or 0 had it finished)\n%s", 100*frac, code, exitInterrupted, errs.String())
		} else if code == exitInterrupted {
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("an interrupted train wrote %s (%v)", out, err)
			}
		}
		noStrays(t, dir)
	}
}
