package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
)

// snapshot is every file under root (or the file root) and its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkRefused runs tlearn with args and checks the exit status, that
// stderr holds every one of want, and that the input under intact is
// unchanged.
func checkRefused(t *testing.T, intact string, wantCode int, want []string, args ...string) {
	t.Helper()
	before := snapshot(t, intact)
	code, _, errs := runTlearn(t, args...)
	if code != wantCode {
		t.Errorf("exit %d, want %d\n%s", code, wantCode, errs)
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
	after := snapshot(t, intact)
	if len(after) != len(before) {
		t.Errorf("%s held %d files, now %d", intact, len(before), len(after))
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s changed", p)
		}
	}
}

// TestForceReplacesOnlyRuns: train and finetune --force replace a run
// folder, never a dataset or the cache that the command reads.
func TestForceReplacesOnlyRuns(t *testing.T) {
	common := []string{"--hidden", "0", "--epochs", "1", "--threads", "1", "--force", "-q"}
	for _, tc := range []struct {
		desc   string
		intact string
		want   []string
		args   []string
	}{
		{"train over a dataset", "PHOTOS", []string{"PHOTOS is not a tlearn run folder", "cat/", "choose another --out"},
			[]string{"train", "--train", "TRAIN", "--val", "VAL", "--out", "PHOTOS"}},
		{"train over its training cache", "TRAIN", []string{"the output TRAIN is the input TRAIN", "choose another --out"},
			[]string{"train", "--train", "TRAIN", "--val", "VAL", "--out", "TRAIN"}},
		{"train over the folder of its caches", "CACHES", []string{"the output CACHES holds the input TRAIN", "choose another --out"},
			[]string{"train", "--train", "TRAIN", "--val", "VAL", "--out", "CACHES"}},
		{"sweep into its training cache", "TRAIN", []string{"lies inside the input TRAIN", "choose another --out"},
			[]string{"train", "--train", "TRAIN", "--val", "VAL", "--out", "TRAIN", "--sweep", "lr=1e-2,1e-3"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			root := t.TempDir()
			caches := filepath.Join(root, "cache")
			train, val := cachePair(t, caches, testClasses, "aaaa")
			photos := filepath.Join(root, "photos")
			fixtures.ClassImages(t, photos, "cat", 2, 1)
			r := strings.NewReplacer("PHOTOS", photos, "TRAIN", train, "VAL", val, "CACHES", caches)
			checkRefused(t, r.Replace(tc.intact), 2, replaceAll(r, tc.want), append(replaceAll(r, tc.args), common...)...)
		})
	}
}

// replaceAll is ss with r applied to each.
func replaceAll(r *strings.Replacer, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = r.Replace(s)
	}
	return out
}

// TestFinetuneForceReplacesOnlyRuns: finetune --force refuses a dataset,
// the maps cache it reads and a folder inside its model.
func TestFinetuneForceReplacesOnlyRuns(t *testing.T) {
	ortlibtest.Init(t)
	for _, tc := range []struct {
		desc, out, intact string
		want              []string
	}{
		{"over a dataset", "DATA", "DATA", []string{"DATA is not a tlearn run folder", "cat/, dog/", "choose another --out"}},
		{"over its validation cache", "VAL", "VAL", []string{"the output VAL is the input VAL", "choose another --out"}},
		{"into its model", "MODEL/run", "MODEL", []string{"the output MODEL/run lies inside the input MODEL", "choose another --out"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			root := t.TempDir()
			model := filepath.Join(root, "model")
			if _, err := models.WriteTinyPrepared(model, 1); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(root, "data")
			writePNGs(t, data, "cat", 6)
			writePNGs(t, data, "dog", 6)
			cacheDir := filepath.Join(root, "cache")
			if code, _, errs := runTlearn(t, "extract", "--model", model, "--data", data, "--cache", cacheDir, "--val", "0.34",
				"--size", "64", "--device", "cpu", "--threads", "1", "--maps", "-q"); code != 0 {
				t.Fatalf("extract: exit %d\n%s", code, errs)
			}
			train, val := filepath.Join(cacheDir, "train"), filepath.Join(cacheDir, "val")
			r := strings.NewReplacer("DATA", data, "VAL", val, "MODEL", model)
			checkRefused(t, r.Replace(tc.intact), 2, replaceAll(r, tc.want), "finetune", "--model", model, "--train", train, "--val", val,
				"--device", "cpu", "--threads", "1", "--hidden", "8", "--epochs", "1", "--batch", "4", "--force", "-q", "--out", r.Replace(tc.out))
		})
	}
}

// TestOutputsNeverOverwriteInputs: export, classify, evaluate and extract
// refuse an output that is, or lies inside, one of their inputs.
func TestOutputsNeverOverwriteInputs(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		intact string
		want   []string
		args   []string
	}{
		{"export over the run's weights", "RUN", []string{"the output RUN/weights.safetensors is the input RUN/weights.safetensors", "choose another --out"},
			[]string{"export", "--run", "RUN", "--out", "RUN/weights.safetensors", "--threads", "1"}},
		{"export over the model's extractor", "MODEL", []string{"the output MODEL/extractor.onnx lies inside the input MODEL", "choose another --out"},
			[]string{"export", "--run", "RUN", "--out", "MODEL/extractor.onnx", "--threads", "1"}},
		{"classify over an image it reads", "DATA", []string{"the output DATA/cat/IMG lies inside the input DATA", "choose another --out"},
			[]string{"classify", "--model", "CLF", "--out", "DATA/cat/IMG", "--threads", "1", "DATA"}},
		{"classify over its classifier", "CLF", []string{"the output CLF is the input CLF", "choose another --out"},
			[]string{"classify", "--model", "CLF", "--out", "CLF", "--threads", "1", "DATA/cat/IMG"}},
		{"evaluate into the run", "RUN", []string{"the output RUN/metrics.json is the input RUN/metrics.json", "choose another --out"},
			[]string{"evaluate", "--run", "RUN", "--cache", "CACHE", "--out", "RUN/metrics.json", "--threads", "1"}},
		{"evaluate over the run's model", "MODEL", []string{"the output MODEL/spec.json lies inside the input MODEL", "choose another --out"},
			[]string{"evaluate", "--run", "RUN", "--cache", "CACHE", "--out", "MODEL/spec.json", "--threads", "1"}},
		{"evaluate's plot into the cache", "CACHE", []string{"the output CACHE/labels.png lies inside the input CACHE", "choose another --confusion"},
			[]string{"evaluate", "--run", "RUN", "--cache", "CACHE", "--confusion", "CACHE/labels.png", "--threads", "1"}},
		{"extract into the dataset", "DATA", []string{"the output DATA/features lies inside the input DATA", "choose another --cache"},
			[]string{"extract", "--model", "MODEL", "--data", "DATA", "--cache", "DATA/features", "--size", exportSize, "--device", "cpu", "--threads", "1"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := newExportFixture(t, 0)
			clf := filepath.Join(t.TempDir(), "classifier.onnx")
			if code, _, errs := runTlearn(t, "export", "--run", f.run, "--out", clf, "--threads", "1"); code != 0 {
				t.Fatalf("export: exit %d\n%s", code, errs)
			}
			img := firstFile(t, filepath.Join(f.data, "cat"))
			r := strings.NewReplacer("RUN", f.run, "MODEL", f.model, "DATA", f.data, "CACHE", f.cache, "CLF", clf, "IMG", img)
			checkRefused(t, r.Replace(tc.intact), 2, replaceAll(r, tc.want), replaceAll(r, tc.args)...)
		})
	}
}

// TestOutputsBehindSymlinks: a symbolic link does not hide an input.
func TestOutputsBehindSymlinks(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	link := filepath.Join(root, "link")
	if err := os.Symlink(train, link); err != nil {
		t.Skip(err)
	}
	checkRefused(t, train, 2, []string{"the output " + link + " is the input " + train},
		"train", "--train", train, "--val", val, "--out", link, "--hidden", "0", "--epochs", "1", "--threads", "1", "--force", "-q")
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("%s: %v", dir, err)
	}
	return entries[0].Name()
}

// TestCompareOutInsideItsData: compare refuses a report folder inside its
// validation images, before extracting anything.
func TestCompareOutInsideItsData(t *testing.T) {
	ortlibtest.Init(t)
	model, train, val := compareFixture(t)
	out := filepath.Join(val, "report")
	checkRefused(t, val, 2, []string{"the output " + out + " lies inside the input " + val, "choose another --out"},
		compareArgs(model, train, val, out)...)
}
