package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib"
)

// TestEvaluate measures a head run on its validation cache again (the
// report is the one in metrics.json) and refuses caches it cannot read.
func TestEvaluate(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	classes := []string{"cat", "dog", "fox"}
	train, val := cachePair(t, filepath.Join(root, "cache"), classes)
	run := filepath.Join(root, "run")
	if _, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: run, Head: head.Settings{Hidden: 8, Epochs: 2}}, nil); err != nil {
		t.Fatal(err)
	}
	noRuntime := func() (ortlib.Options, error) {
		return ortlib.Options{}, errors.New("a head run needs no ONNX Runtime")
	}
	rep, err := Evaluate(context.Background(), EvaluateSettings{Run: run, Cache: val, Runtime: noRuntime}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rundir.ReadMetrics(run)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accuracy != m.Validation.Accuracy || rep.TopK != min(reportTopK, len(classes)) || fmt.Sprint(rep.Confusion) != fmt.Sprint(m.Validation.Confusion) {
		t.Errorf("report: accuracy %v top-%d %v; metrics.json: accuracy %v %v", rep.Accuracy, rep.TopK, rep.Confusion, m.Validation.Accuracy, m.Validation.Confusion)
	}
	if rep, err := Evaluate(context.Background(), EvaluateSettings{Run: run, Cache: val, TopK: 2}, nil); err != nil || rep.TopK != 2 {
		t.Errorf("TopK 2: %v, %v", rep, err)
	}

	otherModel := filepath.Join(root, "other-model")
	fixtures.FeatureCache(t, otherModel, 30, 12, classes, "bbbb", 2)
	twoClasses := filepath.Join(root, "two-classes")
	fixtures.FeatureCache(t, twoClasses, 30, 12, classes[:2], "aaaa", 2)
	renamed := filepath.Join(root, "renamed")
	fixtures.FeatureCache(t, renamed, 30, 12, []string{"cat", "dog", "owl"}, "aaaa", 2)
	wider := filepath.Join(root, "wider")
	fixtures.FeatureCache(t, wider, 30, 16, classes, "aaaa", 2)
	fineTuned := filepath.Join(root, "run-ft")
	copyAsFineTuned(t, run, fineTuned)
	for _, tc := range []struct {
		desc, run, cache, want string
		is                     error
	}{
		{desc: "another backbone", run: run, cache: otherModel, want: "was made with another backbone (extractor sha256 bbbb, the run was trained on aaaa from /models/aaaa)"},
		{desc: "other class count", run: run, cache: twoClasses, want: "has 2 classes [cat dog], the run has 3 [cat dog fox]"},
		{desc: "renamed classes", run: run, cache: renamed, want: "(same names in the same order needed)"},
		{desc: "other feature size", run: run, cache: wider, want: "has 16 features per image, the head expects 12"},
		{desc: "not a run", run: root, cache: val, is: rundir.ErrNotRun},
		{desc: "fine-tuned run, cache without maps", run: fineTuned, cache: val, want: "experiment: " + val + " has no block4_pool maps"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Evaluate(context.Background(), EvaluateSettings{Run: tc.run, Cache: tc.cache, Runtime: noRuntime}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %v, want one with %q (wrapping %v)", err, tc.want, tc.is)
			}
		})
	}
	var noMaps *NoMapsError
	if _, err := Evaluate(context.Background(), EvaluateSettings{Run: fineTuned, Cache: val}, nil); !errors.As(err, &noMaps) || noMaps.Dir != val {
		t.Errorf("fine-tuned run on a cache without maps: %v, want a *NoMapsError for %s", err, val)
	}
}

// copyAsFineTuned copies the run directory from to to, with settings.json
// saying mode "finetune".
func copyAsFineTuned(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(to, rundir.SettingsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := json.Unmarshal(b, &settings); err != nil {
		t.Fatal(err)
	}
	settings["mode"] = rundir.ModeFineTune
	if b, err = json.Marshal(settings); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
