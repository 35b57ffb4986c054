package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// TestSecondWriterFails holds the lock of each kind of output, as a
// writer running in another process would, and checks that the command
// writing it fails at once with a *fsutil.LockedError naming the holder's
// pid and command, before any work and without touching the output.
func TestSecondWriterFails(t *testing.T) {
	t.Parallel()
	cs := compareFixture(t)
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	run := filepath.Join(root, "done")
	if _, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: run, Head: head.Settings{Hidden: 4, Epochs: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	src, err := dataset.Open(cs.TrainData, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		out  string
		fn   func(out string, p progress.Reporter) error
	}{
		{"extract", filepath.Join(root, "newcache"), func(out string, p progress.Reporter) error {
			_, err := Extract(context.Background(), ExtractSettings{Model: cs.Model, Data: cs.TrainData, Cache: out, Val: 0.25}, p)
			return err
		}},
		{"train", filepath.Join(root, "run"), func(out string, p progress.Reporter) error {
			_, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: out, Head: head.Settings{Hidden: 4, Epochs: 2}}, p)
			return err
		}},
		{"sweep", filepath.Join(root, "sweep"), func(out string, p progress.Reporter) error {
			axes, err := ParseSweep([]string{"lr=1e-3,1e-2"})
			if err != nil {
				return err
			}
			_, err = Sweep(context.Background(), SweepSettings{Train: train, Val: val, Out: out, Base: head.Settings{Hidden: 4, Epochs: 2}, Axes: axes}, p)
			return err
		}},
		{"finetune", filepath.Join(root, "ft"), func(out string, p progress.Reporter) error {
			_, err := FineTune(context.Background(), FineTuneSettings{Model: cs.Model, Train: train, Val: val, Out: out}, p)
			return err
		}},
		{"compare", filepath.Join(root, "report"), func(out string, p progress.Reporter) error {
			s := cs
			s.Out = out
			_, err := Compare(context.Background(), s, &stageRecorder{})
			return err
		}},
		{"split", filepath.Join(root, "split"), func(out string, p progress.Reporter) error {
			_, err := SplitData(context.Background(), src, SplitSettings{Out: out, Val: 0.25, Seed: 1}, p)
			return err
		}},
		{"export", filepath.Join(root, "clf.onnx"), func(out string, p progress.Reporter) error {
			_, err := Export(context.Background(), ExportSettings{Run: run, Model: cs.Model, Out: out}, p)
			return err
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			held, err := fsutil.LockOutput(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Unlock()
			var rec progress.Recorder
			err = tc.fn(tc.out, &rec)
			var le *fsutil.LockedError
			if !errors.As(err, &le) || le.PID != os.Getpid() || le.Path != filepath.Clean(tc.out) {
				t.Fatalf("second writer: %v, want a *fsutil.LockedError naming pid %d and %s", err, os.Getpid(), tc.out)
			}
			if want := strings.Join(os.Args, " "); le.Command != want || !strings.Contains(err.Error(), want) {
				t.Errorf("holder's command %q in %q, want %q", le.Command, err, want)
			}
			if len(rec.Events) > 0 {
				t.Errorf("worked before failing: %q", rec.Events)
			}
			if _, err := os.Lstat(tc.out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v, want it untouched (missing)", tc.out, err)
			}
		})
	}
}

// TestStaleTemporariesRemoved leaves what writers killed with SIGKILL
// leave next to their outputs and checks that the next run of the same
// command removes them, and nothing of other outputs.
func TestStaleTemporariesRemoved(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	mk := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if strings.Contains(filepath.Base(p), ".partial-") {
				if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "sub", "weights.safetensors"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v, want it removed", p, err)
			}
		}
	}
	kept := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s: %v, want it kept", p, err)
			}
		}
	}
	others := []string{filepath.Join(root, ".other.partial-1"), filepath.Join(root, ".other.tmp-2")}
	mk(others...)

	t.Run("train", func(t *testing.T) {
		stale := []string{filepath.Join(root, ".run.partial-123"), filepath.Join(root, ".run.partial-77.old"), filepath.Join(root, ".run.tmp-5")}
		mk(stale...)
		var rec progress.Recorder
		if _, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: filepath.Join(root, "run"), Head: head.Settings{Hidden: 4, Epochs: 1}}, &rec); err != nil {
			t.Fatal(err)
		}
		gone(stale...)
		kept(others...)
		gone(fsutil.LockPath(filepath.Join(root, "run")))
	})
	t.Run("sweep", func(t *testing.T) {
		out := filepath.Join(root, "sweep")
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		axes, err := ParseSweep([]string{"lr=1e-3"})
		if err != nil {
			t.Fatal(err)
		}
		runs, err := combinations(head.Settings{Hidden: 4, Epochs: 1}, axes)
		if err != nil {
			t.Fatal(err)
		}
		stale := []string{filepath.Join(out, "."+runs[0].Name+".partial-9"), filepath.Join(out, "."+SweepFile+".tmp-3"), filepath.Join(root, ".sweep.partial-4")}
		mk(stale...)
		if _, err := Sweep(context.Background(), SweepSettings{Train: train, Val: val, Out: out, Base: head.Settings{Hidden: 4, Epochs: 1}, Axes: axes}, nil); err != nil {
			t.Fatal(err)
		}
		gone(stale...)
		kept(others...)
	})
	t.Run("finetune", func(t *testing.T) {
		// The model is not a prepared one, so fine-tuning fails after the
		// lock: the killed run's temporaries go, its checkpoint (which the
		// next call with the same settings resumes from) stays.
		out := filepath.Join(root, "ft")
		ck := CheckpointPath(out)
		stale := []string{filepath.Join(root, ".ft.partial-1"), filepath.Join(root, "."+filepath.Base(ck)+".tmp-8")}
		mk(append(stale, ck)...)
		if _, err := FineTune(context.Background(), FineTuneSettings{Model: t.TempDir(), Train: train, Val: val, Out: out}, nil); err == nil {
			t.Fatal("fine-tuned with no model")
		}
		gone(stale...)
		kept(append(others, ck)...)
	})
	t.Run("extract", func(t *testing.T) {
		cs := compareFixture(t)
		out := filepath.Join(root, "newcache")
		if err := os.MkdirAll(filepath.Join(out, "train"), 0o755); err != nil {
			t.Fatal(err)
		}
		stale := []string{filepath.Join(root, ".newcache.tmp-1"), filepath.Join(out, "train", ".features.npy.tmp-2"), filepath.Join(out, ".manifest.json.tmp-3")}
		mk(stale...)
		// Without ONNX Runtime the extraction fails after the lock.
		Extract(context.Background(), ExtractSettings{Model: cs.Model, Data: cs.TrainData, Cache: out, Val: 0.25}, nil)
		gone(stale...)
		kept(others...)
	})
}

// TestLockedOutputLeavesNoLockFile checks that a finished command removes
// its lock file, so that outputs gain no stray files.
func TestLockedOutputLeavesNoLockFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	fixtures.ClassImages(t, data, "ant", 4, 1)
	fixtures.ClassImages(t, data, "bee", 4, 2)
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SplitData(context.Background(), src, SplitSettings{Out: filepath.Join(root, "split"), Val: 0.25, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Errorf("%s holds %d entries, want data and split only", root, len(ents))
	}
}

// cancelAfter cancels a run once it logs a line holding what.
type cancelAfter struct {
	progress.Recorder
	what   string
	cancel context.CancelFunc
}

func (c *cancelAfter) Log(msg string) {
	c.Recorder.Log(msg)
	if strings.Contains(msg, c.what) {
		c.cancel()
	}
}

// TestFineTuneOtherSettingsCheckpoint interrupts a fine-tuning after its
// first epoch and starts the same run folder with another learning rate:
// without Overwrite the checkpoint is refused (and kept); with it the
// abandoned checkpoint is removed and the run starts over, and none is
// left once it is written.
func TestFineTuneOtherSettingsCheckpoint(t *testing.T) {
	ortlibtest.Init(t)
	cs := compareFixture(t)
	root, train, val := splitMapsCaches(t, cs)
	out := filepath.Join(root, "ft")
	s := FineTuneSettings{Model: cs.Model, Train: train, Val: val, Out: out,
		Tuning: finetune.Settings{Settings: head.Settings{Hidden: 4, Epochs: 3, Batch: 8, LR: 1e-3}, Runtime: cs.Runtime}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := FineTune(ctx, s, &cancelAfter{what: "epoch 1/3", cancel: cancel}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted fine-tuning: %v", err)
	}
	ck := CheckpointPath(out)
	if _, err := os.Stat(ck); err != nil {
		t.Fatalf("no checkpoint after an interrupted epoch: %v", err)
	}
	s.Tuning.LR = 2e-3
	if _, err := FineTune(context.Background(), s, nil); !errors.Is(err, finetune.ErrOtherRun) {
		t.Fatalf("other settings: %v, want finetune.ErrOtherRun", err)
	}
	if _, err := os.Stat(ck); err != nil {
		t.Fatalf("the refused checkpoint: %v, want it kept", err)
	}
	s.Overwrite = true
	var rec progress.Recorder
	if _, err := FineTune(context.Background(), s, &rec); err != nil {
		t.Fatalf("other settings with Overwrite: %v", err)
	}
	if !slices.ContainsFunc(rec.Logs(), func(l string) bool { return strings.Contains(l, "removed "+ck) }) {
		t.Errorf("no word of the removed checkpoint in %q", rec.Logs())
	}
	if _, err := os.Stat(ck); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint after the run: %v, want it removed", err)
	}
}

// TestSweepRunLocked checks that a sweep stops at a run folder that a
// train in another process is writing, naming that process, rather than
// racing it.
func TestSweepRunLocked(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	axes, err := ParseSweep([]string{"lr=1e-3"})
	if err != nil {
		t.Fatal(err)
	}
	base := head.Settings{Hidden: 4, Epochs: 1}
	runs, err := combinations(base, axes)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "sweep")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	held, err := fsutil.LockOutput(filepath.Join(out, runs[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	_, err = Sweep(context.Background(), SweepSettings{Train: train, Val: val, Out: out, Base: base, Axes: axes}, nil)
	var le *fsutil.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.Path != filepath.Join(out, runs[0].Name) {
		t.Fatalf("sweep into a locked run: %v, want a *fsutil.LockedError naming pid %d", err, os.Getpid())
	}
}
