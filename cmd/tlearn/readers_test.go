package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestReadersOfACacheBeingWritten: while an extract holds the lock of a
// cache folder (extract --force rewriting it), train and evaluate read the
// complete old cache, or, in each state that the rewrite passes through
// (old manifest gone, new manifest of no finished chunk, new arrays under
// the old manifest), stop with "being written by another process" naming
// the writer, not with advice to resume or rebuild a cache that another
// command is writing. Once the lock is released the same states give the
// usual errors.
func TestReadersOfACacheBeingWritten(t *testing.T) {
	root := t.TempDir()
	caches := filepath.Join(root, "cache")
	train, val := cachePair(t, caches, testClasses, "aaaa")
	run := filepath.Join(root, "run")
	if code, _, errs := runTlearn(t, "train", "--train", train, "--val", val, "--out", run, "--epochs", "1", "--hidden", "8", "--threads", "1", "-q"); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, errs)
	}
	readers := func(out string) [][]string {
		return [][]string{
			{"train", "--train", train, "--val", val, "--out", filepath.Join(root, out), "--epochs", "1", "--hidden", "8", "--threads", "1", "-q"},
			{"evaluate", "--run", run, "--cache", train, "--threads", "1"},
			{"train", "--train", caches, "--out", filepath.Join(root, out+"-pair"), "--epochs", "1", "--hidden", "8", "--threads", "1", "-q"},
		}
	}

	held, err := fsutil.LockOutput(caches) // as `extract --cache CACHES --val ... --force` holds it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()

	// Not yet touched by the writer: the complete old cache reads.
	for _, args := range readers("run-old") {
		if code, _, errs := runTlearn(t, args...); code != 0 {
			t.Fatalf("%s of the complete old cache: exit %d\n%s", args[0], code, errs)
		}
	}

	manifest := filepath.Join(train, cache.ManifestFile)
	orig, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	features := filepath.Join(train, cache.FeaturesFile)
	origFeatures, err := os.ReadFile(features)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		t.Helper()
		if err := os.WriteFile(manifest, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(features, origFeatures, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	states := []struct {
		desc     string
		damage   func(t *testing.T)
		unlocked string // what a reader says of the state with no writer
	}{
		{"old manifest removed", func(t *testing.T) {
			if err := os.Remove(manifest); err != nil {
				t.Fatal(err)
			}
		}, "make one with tlearn extract"},
		{"new manifest, no chunk finished", func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(orig, &m); err != nil {
				t.Fatal(err)
			}
			m["done"] = []any{}
			b, _ := json.Marshal(m)
			if err := os.WriteFile(manifest, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "run the same tlearn extract command again to resume it"},
		{"new arrays under the old manifest", func(t *testing.T) {
			b := make([]byte, len(origFeatures))
			hdr := len(origFeatures) - 60*12*4 // cachePair's train: 60 rows of 12 float32
			copy(b, origFeatures[:hdr])        // the header; the rows not yet written
			if err := os.WriteFile(features, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "rebuild it with tlearn extract --force"},
	}
	for _, st := range states {
		t.Run(st.desc, func(t *testing.T) {
			defer restore()
			st.damage(t)
			for _, args := range readers("run-" + strconv.Itoa(len(st.desc))) {
				code, _, errs := runTlearn(t, args...)
				wantStderr(t, args[0], code, errs, 1, caches+" is being written by another process",
					"pid "+strconv.Itoa(os.Getpid()), "wait for that command to finish")
				for _, wrong := range []string{"resume it", "extract --force", "make one with"} {
					if strings.Contains(errs, wrong) {
						t.Errorf("%s: stderr advises %q about a cache that is being written:\n%s", args[0], wrong, errs)
					}
				}
			}
		})
	}

	held.Unlock()
	for _, st := range states {
		t.Run(st.desc+", no writer", func(t *testing.T) {
			defer restore()
			st.damage(t)
			code, _, errs := runTlearn(t, readers("run-unlocked")[0]...)
			wantStderr(t, "train", code, errs, 1, st.unlocked)
			if strings.Contains(errs, "being written") {
				t.Errorf("no writer holds %s, yet:\n%s", caches, errs)
			}
		})
	}
}
