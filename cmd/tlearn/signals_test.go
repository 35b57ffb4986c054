package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// exitWithin is how soon a signalled command must exit.
const exitWithin = 5 * time.Second

// The sentences each command prints after "tlearn: interrupted; ".
const (
	keptExport   = "the classifier was not written; the same command exports it again from the start"
	keptClassify = "an --out file is not written; the same command classifies every image again"
	keptExtract  = "the chunks already written to the cache are kept and the same command resumes from them"
	keptFinetune = "the checkpoint of the last finished epoch is kept and the same command resumes from it"
	keptTrain    = "the same command trains it again from the start"
	keptEvaluate = "nothing was written; the same command evaluates again from the start"
	keptPrepare  = "the model folder was not written; the same command prepares it again from the start"
	keptCache    = "the cache was not changed; the same command checks it again from the start"
	keptData     = "; the same command restarts it from the beginning"
)

// buildTlearn builds the CLI into a temporary folder: signals are sent to
// a process of its own, since this test process must not receive them.
func buildTlearn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tlearn")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// signalled runs bin with args, sends sig once after has run for after
// (the tiny inputs are sized so that the work lasts seconds past it),
// and returns the exit status and stderr; it fails the test when the
// process exits before the signal or later than exitWithin after it.
func signalled(t *testing.T, bin string, sig os.Signal, after time.Duration, args ...string) (code int, stderr string) {
	t.Helper()
	cmd := tlearnCmd(t, bin, args)
	var errs syncBuffer
	cmd.Stderr = &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("%s finished (%v) before it was signalled: make its work longer\n%s", args[0], err, errs.String())
	case <-time.After(after):
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case <-done:
	case <-time.After(exitWithin):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s still ran %v after %v\n%s", args[0], exitWithin, sig, errs.String())
	}
	t.Logf("%s exited %v after %v", args[0], time.Since(sent).Round(time.Millisecond), sig)
	return cmd.ProcessState.ExitCode(), errs.String()
}

// noStrays fails when a temporary file or folder of an atomic write is
// left anywhere under dir.
func noStrays(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n := d.Name(); strings.Contains(n, ".tmp-") || strings.Contains(n, ".partial-") {
			t.Errorf("an interrupted command left %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wantInterrupted checks the exit status and the command's own sentence.
func wantInterrupted(t *testing.T, code int, stderr, kept string) {
	t.Helper()
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, stderr)
	}
	if !strings.Contains(stderr, "tlearn: interrupted; ") || !strings.Contains(stderr, kept) {
		t.Errorf("stderr lacks %q:\n%s", kept, stderr)
	}
}

// TestSignalsStopLongCommands sends SIGTERM (SIGINT to classify) to the
// real binary while each command works on the tiny model, at input sides
// large enough that the work lasts seconds: export's check run, classify,
// extract and train exit within exitWithin with status 130, say what they
// kept, and leave no temporary files.
func TestSignalsStopLongCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it for seconds")
	}
	f := newExportFixture(t, 0)
	bin := buildTlearn(t)

	t.Run("export", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "classifier.onnx")
		// At side 1536 the check run alone takes seconds on one thread (2.5 s
		// for the whole export on a 2-core EPYC); 600 ms is past loading.
		code, errs := signalled(t, bin, syscall.SIGTERM, 600*time.Millisecond, "export", "--run", f.run, "--out", out, "--size", "1536")
		wantInterrupted(t, code, errs, keptExport)
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an interrupted export wrote %s (%v)", out, err)
		}
		noStrays(t, dir)
	})

	t.Run("classify", func(t *testing.T) {
		dir := t.TempDir()
		clf := filepath.Join(dir, "classifier.onnx")
		if code, _, errs := runTlearn(t, "export", "--run", f.run, "--out", clf, "--size", "1024", "--threads", "1"); code != 0 {
			t.Fatalf("export: exit %d\n%s", code, errs)
		}
		out := filepath.Join(dir, "labels.csv")
		code, errs := signalled(t, bin, os.Interrupt, time.Second, "classify", "--model", clf, "--batch", "1", "--out", out, f.data)
		wantInterrupted(t, code, errs, keptClassify)
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an interrupted classify wrote %s (%v)", out, err)
		}
		noStrays(t, dir)
	})

	t.Run("extract", func(t *testing.T) {
		dir := t.TempDir()
		cache := filepath.Join(dir, "cache")
		code, errs := signalled(t, bin, syscall.SIGTERM, time.Second, "extract", "--model", f.model, "--data", f.data,
			"--cache", cache, "--size", "1024", "--batch", "1")
		wantInterrupted(t, code, errs, keptExtract)
		noStrays(t, dir)
	})

	t.Run("finetune", func(t *testing.T) {
		dir := t.TempDir()
		cache := filepath.Join(dir, "cache")
		if code, _, errs := runTlearn(t, "extract", "--model", f.model, "--data", f.data, "--cache", cache, "--val", "0.34",
			"--size", "64", "--maps", "--device", "cpu", "--threads", "1"); code != 0 {
			t.Fatalf("extract: exit %d\n%s", code, errs)
		}
		out := filepath.Join(dir, "run")
		code, errs := signalled(t, bin, syscall.SIGTERM, time.Second, "finetune", "--model", f.model,
			"--train", filepath.Join(cache, "train"), "--val", filepath.Join(cache, "val"), "--out", out, "--epochs", "1000000")
		wantInterrupted(t, code, errs, keptFinetune)
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an interrupted finetune wrote %s (%v)", out, err)
		}
		noStrays(t, dir)
	})

	t.Run("data mnist", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "idx")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		// Noise does not compress: thousands of PNGs take seconds to encode.
		const n = 20000
		pix := make([]byte, n*28*28)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range pix {
			pix[i] = byte(rng.Uint32())
		}
		labels := make([]byte, n)
		for i := range labels {
			labels[i] = byte(i % 10)
		}
		for _, p := range []string{"train", "t10k"} {
			writeIdx(t, filepath.Join(src, p+"-images-idx3-ubyte"), []int{n, 28, 28}, pix)
			writeIdx(t, filepath.Join(src, p+"-labels-idx1-ubyte"), []int{n}, labels)
		}
		code, errs := signalled(t, bin, syscall.SIGTERM, 500*time.Millisecond, "data", "mnist", "--src", src, "--out", filepath.Join(dir, "mnist"))
		wantInterrupted(t, code, errs, keptData)
		noStrays(t, dir)
	})

	t.Run("train", func(t *testing.T) {
		dir := t.TempDir()
		train, val := cachePair(t, filepath.Join(dir, "cache"), testClasses, "aaaa")
		out := filepath.Join(dir, "run")
		code, errs := signalled(t, bin, syscall.SIGTERM, time.Second, "train", "--train", train, "--val", val, "--out", out, "--epochs", "1000000")
		wantInterrupted(t, code, errs, keptTrain)
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an interrupted train wrote %s (%v)", out, err)
		}
		noStrays(t, dir)
	})

	t.Run("sweep", func(t *testing.T) {
		dir := t.TempDir()
		train, val := cachePair(t, filepath.Join(dir, "cache"), testClasses, "aaaa")
		out := filepath.Join(dir, "sweep")
		code, errs := signalled(t, bin, syscall.SIGTERM, time.Second, "train", "--train", train, "--val", val, "--out", out,
			"--sweep", "lr=1e-3,1e-2", "--epochs", "1000000")
		wantInterrupted(t, code, errs, keptTrain)
		if _, err := os.Stat(filepath.Join(out, "lr-1e-3")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("an interrupted sweep wrote its unfinished first run (%v)", err)
		}
		noStrays(t, dir)
	})
}

// TestInterruptSaysWhatWasKept runs commands with a context cancelled
// before they start, as Ctrl-C right away does: each stops with status
// 130 and its own sentence, without writing its output.
func TestInterruptSaysWhatWasKept(t *testing.T) {
	f := newExportFixture(t, 0)
	clf := exportRun(t, f.run)
	vgg := filepath.Join(t.TempDir(), "vgg16.onnx")
	if code, _, errs := runTlearn(t, "models", "synth", "vgg16", "--tiny", "--out", vgg); code != 0 {
		t.Fatalf("models synth: exit %d\n%s", code, errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		desc, kept string
		args       func(dir string) []string
	}{
		{"export", keptExport, func(dir string) []string {
			return []string{"export", "--run", f.run, "--out", filepath.Join(dir, "out.onnx"), "--threads", "1"}
		}},
		{"classify", keptClassify, func(dir string) []string {
			return []string{"classify", "--model", clf, "--out", filepath.Join(dir, "out.csv"), "--threads", "1", f.data}
		}},
		{"evaluate", keptEvaluate, func(dir string) []string {
			return []string{"evaluate", "--run", f.run, "--cache", f.cache, "--out", filepath.Join(dir, "report.json")}
		}},
		{"cache info --verify", keptCache, func(string) []string {
			return []string{"cache", "info", "--verify", f.cache}
		}},
		{"models prepare", keptPrepare, func(dir string) []string {
			return []string{"models", "prepare", "--onnx", vgg, "--out", filepath.Join(dir, "model"), "--threads", "1"}
		}},
		{"models quantize", keptQuantize, func(dir string) []string { return quantizeArgs(f, filepath.Join(dir, "model8")) }},
		{"data split", keptData, func(dir string) []string {
			return []string{"data", "split", "--src", f.data, "--val", "0.5", "--out", filepath.Join(dir, "out")}
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := runApp(ctx, newApp(&stdout, &stderr), append([]string{"tlearn"}, tc.args(dir)...))
			wantInterrupted(t, code, stderr.String(), tc.kept)
			noStrays(t, dir)
			if tc.desc != "data split" { // data leaves its marked folder (what keptData says)
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("an interrupted %s wrote %s", tc.desc, entries[0].Name())
				}
			}
		})
	}
}

// TestInterruptedWithoutSentence: a command that says nothing of its own
// promises nothing either.
func TestInterruptedWithoutSentence(t *testing.T) {
	var stderr bytes.Buffer
	app := appWith(&stderr, nil)
	app.Action = func(*cli.Context) error { return context.Canceled }
	if code := runApp(context.Background(), app, []string{"tlearn"}); code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	if got := strings.TrimSpace(stderr.String()); got != "tlearn: interrupted" {
		t.Errorf("stderr %q, want %q", got, "tlearn: interrupted")
	}
}
