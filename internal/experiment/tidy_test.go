package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestRerunTidiesFinishedRun: a train or finetune killed after renaming
// its finished run into place, before it removed the rest, leaves the
// run's lock file, temporaries and (finetune) the checkpoint of its last
// epoch, which can be 91 MB. The rerun of the same command is refused
// (the run exists) and removes them; while a live writer holds the lock
// they are its own and stay.
func TestRerunTidiesFinishedRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	out := filepath.Join(root, "run")
	s := TrainSettings{Train: train, Val: val, Out: out, Head: head.Settings{Hidden: 4, Epochs: 1}}
	if _, err := Train(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{CheckpointPath(out), filepath.Join(root, ".run.tmp-3"), fsutil.LockPath(out)}
	plant := func() {
		t.Helper()
		for _, p := range leftovers {
			if err := os.WriteFile(p, []byte("left by a killed run"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		desc  string
		rerun func() error
		gone  []string
	}{
		{"train", func() error {
			_, err := Train(context.Background(), s, nil)
			return err
		}, leftovers[1:]},
		{"finetune", func() error {
			_, err := FineTune(context.Background(), FineTuneSettings{Model: t.TempDir(), Train: train, Val: val, Out: out}, nil)
			return err
		}, leftovers},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			plant()
			if err := tc.rerun(); !errors.Is(err, rundir.ErrExists) {
				t.Fatalf("rerun over the finished run: %v, want rundir.ErrExists", err)
			}
			for _, p := range tc.gone {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s after the rerun: %v, want it removed", p, err)
				}
			}
			if !rundir.IsRun(out) {
				t.Fatalf("the finished run %s was touched", out)
			}

			// A live writer's files stay.
			plant()
			held, err := fsutil.LockOutput(out)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Unlock()
			if err := tc.rerun(); !errors.Is(err, rundir.ErrExists) {
				t.Fatalf("rerun while locked: %v, want rundir.ErrExists", err)
			}
			for _, p := range leftovers[:2] {
				if _, err := os.Lstat(p); err != nil {
					t.Errorf("%s while its writer lives: %v, want it kept", p, err)
				}
			}
		})
	}
}
