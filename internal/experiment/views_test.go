package experiment

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
)

// A cache of views trains against a plain validation cache, and evaluate
// measures view 0 by default and the views' mean with TTA, as head.Evaluate
// does on the same data.
func TestTrainEvaluateViews(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	cs := compareFixture(t)
	root := t.TempDir()
	aug := dataset.Augment{Flip: true, Crop: 0.5}
	views, plain := filepath.Join(root, "views"), filepath.Join(root, "plain")
	rec := &progress.Recorder{}
	if _, err := Extract(context.Background(), ExtractSettings{Model: cs.Model, Data: cs.TrainData, Cache: views, Size: 32, Batch: 5,
		Runtime: cs.Runtime, Maps: true, Views: 3, Augment: aug, AugmentSeed: 2}, rec); err != nil {
		t.Fatal(err)
	}
	if logs := strings.Join(rec.Logs(), "\n"); !strings.Contains(logs, "36 images × 3 views (flip,crop=0.5, seed 2): features") {
		t.Errorf("no disk cost in the logs:\n%s", logs)
	}
	if _, err := Extract(context.Background(), ExtractSettings{Model: cs.Model, Data: cs.ValData, Cache: plain, Size: 32, Batch: 5,
		Runtime: cs.Runtime, Maps: true}, nil); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(root, "run")
	if _, err := Train(context.Background(), TrainSettings{Train: views, Val: plain, Out: run, Head: head.Settings{Hidden: 4, Epochs: 2, LR: 1e-2}}, nil); err != nil {
		t.Fatal(err)
	}
	info, err := rundir.ReadInfo(run)
	if err != nil {
		t.Fatal(err)
	}
	vm, _ := cache.ReadManifest(views)
	if info.TrainCache.Fingerprint != vm.Fingerprint {
		t.Errorf("the run records train cache fingerprint %s, the cache has %s", info.TrainCache.Fingerprint, vm.Fingerprint)
	}
	w, err := rundir.LoadWeights(filepath.Join(run, rundir.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.OpenFeatures(views)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tta := range []bool{false, true} {
		got, err := Evaluate(context.Background(), EvaluateSettings{Run: run, Cache: views, TTA: tta}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := cacheData(c)
		if !tta {
			d = d.View(0)
		}
		want, err := head.Evaluate(context.Background(), w, d, reportTopK)
		if err != nil {
			t.Fatal(err)
		}
		if got.Accuracy != want.Accuracy || got.Loss != want.Loss {
			t.Errorf("tta %v: accuracy %g loss %g, want %g %g", tta, got.Accuracy, got.Loss, want.Accuracy, want.Loss)
		}
	}
	if _, err := Train(context.Background(), TrainSettings{Train: views, Val: views, Out: filepath.Join(root, "tta"), TTA: true,
		Head: head.Settings{Hidden: 4, Epochs: 1, LR: 1e-2}}, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := rundir.ReadInfo(filepath.Join(root, "tta")); err != nil || !info.TTA {
		t.Errorf("the run trained with TTA records tta %v (%v)", info.TTA, err)
	}
	if info, err := rundir.ReadInfo(run); err != nil || info.TTA {
		t.Errorf("the run trained without TTA records tta %v (%v)", info.TTA, err)
	}
	// A sweep with TTA validates every run as Train with TTA does, and a
	// sweep without it does not take those runs for its own.
	sweep := filepath.Join(root, "sweep")
	axes := []Axis{{Key: "lr", Values: []string{"1e-2"}}}
	base := head.Settings{Hidden: 4, Epochs: 1, LR: 1e-2}
	res, err := Sweep(context.Background(), SweepSettings{Train: views, Val: views, Out: sweep, Base: base, Axes: axes, TTA: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	single, err := rundir.ReadMetrics(filepath.Join(root, "tta"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Runs[0].Metrics.Final.ValAccuracy; got != single.Final.ValAccuracy {
		t.Errorf("the sweep's run with TTA has val accuracy %g, train with TTA %g", got, single.Final.ValAccuracy)
	}
	if _, err := Sweep(context.Background(), SweepSettings{Train: views, Val: views, Out: sweep, Base: base, Axes: axes}, nil); !errors.Is(err, rundir.ErrExists) {
		t.Errorf("a sweep without TTA over the runs of one with it: %v, want rundir.ErrExists", err)
	}
	// A run on views alone evaluated on the plain cache of the same
	// extraction setting: no note about other settings.
	rec = &progress.Recorder{}
	if _, err := Evaluate(context.Background(), EvaluateSettings{Run: filepath.Join(root, "tta"), Cache: plain}, rec); err != nil {
		t.Fatal(err)
	}
	if logs := rec.Logs(); len(logs) > 0 {
		t.Errorf("evaluating on the plain cache logged %q", logs)
	}
	// Fine-tuning draws from the maps' views and validates on the plain
	// cache or, with TTA, on the views' mean.
	for _, tc := range []struct {
		val string
		tta bool
	}{{plain, false}, {views, true}} {
		out := filepath.Join(root, "ft-"+filepath.Base(tc.val))
		if _, err := FineTune(context.Background(), FineTuneSettings{Model: cs.Model, Train: views, Val: tc.val, Out: out, TTA: tc.tta,
			Tuning: finetune.Settings{Settings: head.Settings{Hidden: 4, Epochs: 1, Batch: 8}, Runtime: cs.Runtime}}, nil); err != nil {
			t.Fatal(err)
		}
	}
}
