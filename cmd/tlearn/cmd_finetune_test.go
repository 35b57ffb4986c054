package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
)

func finetuneApp(stdout, stderr *bytes.Buffer) *cli.App {
	return appWith(stdout, stderr, extractCommand(), finetuneCommand())
}

func TestFinetuneCommand(t *testing.T) {
	ortlibtest.Init(t)
	root := t.TempDir()
	model := filepath.Join(root, "model")
	spec, err := models.WriteTinyPrepared(model, 1)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	writePNGs(t, data, "cat", 6)
	writePNGs(t, data, "dog", 6)
	var out, errs bytes.Buffer
	extract := func(cacheDir, modelDir string, maps bool) {
		t.Helper()
		args := []string{"tlearn", "extract", "--model", modelDir, "--data", data, "--cache", cacheDir,
			"--val", "0.34", "--size", "64", "--device", "cpu", "--threads", "1"}
		if maps {
			args = append(args, "--maps")
		}
		if err := finetuneApp(&out, &errs).Run(args); err != nil {
			t.Fatalf("extract: %v\n%s", err, errs.String())
		}
	}
	cacheDir := filepath.Join(root, "cache")
	extract(cacheDir, model, true)

	runDir := filepath.Join(root, "run")
	common := []string{"--device", "cpu", "--threads", "1", "--hidden", "8", "--epochs", "2", "--batch", "4", "--lr", "1e-3"}
	args := append([]string{"tlearn", "finetune", "--model", model, "--train", filepath.Join(cacheDir, "train"),
		"--val", filepath.Join(cacheDir, "val"), "--out", runDir}, common...)
	errs.Reset()
	if err := finetuneApp(&out, &errs).Run(args); err != nil {
		t.Fatalf("finetune: %v\n%s", err, errs.String())
	}
	for _, want := range []string{"fine-tuning block5 (32 channels, 4×4 maps)", "epoch 2/2  loss", "images/s", "wrote " + runDir} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs.String())
		}
	}
	for _, f := range []string{rundir.SettingsFile, rundir.WeightsFile, rundir.HistoryFile, rundir.MetricsFile, rundir.CurvesFile, rundir.ConfusionFile} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(experiment.CheckpointPath(runDir)); !os.IsNotExist(err) {
		t.Errorf("the checkpoint of a finished run is still there: %v", err)
	}
	var settings map[string]any
	b, _ := os.ReadFile(filepath.Join(runDir, rundir.SettingsFile))
	if err := json.Unmarshal(b, &settings); err != nil {
		t.Fatal(err)
	}
	if settings["mode"] != rundir.ModeFineTune || settings["hidden"] != 8.0 || settings["optimizer"] != "adam" || settings["block5_lr"] != 1e-3 {
		t.Errorf("settings.json: %s", b)
	}
	w, err := rundir.LoadWeights(filepath.Join(runDir, rundir.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	block5, err := models.ReadBlock5(model, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, b5 := range block5 {
		got := w.Tensors[b5.Name]
		if !slices.Equal(got.Shape, b5.Shape) {
			t.Errorf("%s has shape %v, want %v", b5.Name, got.Shape, b5.Shape)
		}
		if slices.Equal(got.Data, b5.Data) {
			t.Errorf("%s did not change", b5.Name)
		}
	}

	// --init-head from this run (a finetune run carries a head too).
	run2 := filepath.Join(root, "run2")
	errs.Reset()
	args2 := append([]string{"tlearn", "finetune", "--model", model, "--train", filepath.Join(cacheDir, "train"),
		"--val", filepath.Join(cacheDir, "val"), "--out", run2, "--init-head", runDir, "--freeze-block5"}, common[:4]...)
	if err := finetuneApp(&out, &errs).Run(append(args2, "--epochs", "1")); err != nil {
		t.Fatalf("finetune --init-head: %v\n%s", err, errs.String())
	}

	// Bad inputs, through run() as a user sees them.
	noMaps := filepath.Join(root, "nomaps")
	extract(noMaps, model, false)
	other := filepath.Join(root, "other")
	if _, err := models.WriteTinyPrepared(other, 2); err != nil {
		t.Fatal(err)
	}
	notVGG := filepath.Join(root, "notvgg")
	os.MkdirAll(notVGG, 0o755)
	s2 := *spec
	s2.Block5, s2.Maps, s2.Preset = nil, nil, "custom"
	if err := models.WriteSpec(notVGG, &s2); err != nil {
		t.Fatal(err)
	}
	train, val := filepath.Join(cacheDir, "train"), filepath.Join(cacheDir, "val")
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"cache without maps", []string{"--model", model, "--train", filepath.Join(noMaps, "train"), "--val", filepath.Join(noMaps, "val"), "--out", filepath.Join(root, "r1")}, 1, "has no block4_pool maps"},
		{"maps of another model", []string{"--model", other, "--train", train, "--val", val, "--out", filepath.Join(root, "r2")}, 1, "extracted with another model"},
		{"not a VGG", []string{"--model", notVGG, "--train", train, "--val", val, "--out", filepath.Join(root, "r3")}, 1, "without VGG's block5"},
		{"run exists", []string{"--model", model, "--train", train, "--val", val, "--out", runDir}, 2, "--force"},
		{"zero block5 rate", []string{"--model", model, "--train", train, "--val", val, "--out", filepath.Join(root, "r4"), "--block5-lr", "0"}, 2, "--freeze-block5"},
		{"unknown optimizer", []string{"--model", model, "--train", train, "--val", val, "--out", filepath.Join(root, "r5"), "--optimizer", "rmsprop"}, 2, "rmsprop"},
		{"init head of another size", []string{"--model", model, "--train", train, "--val", val, "--out", filepath.Join(root, "r6"), "--init-head", runDir, "--hidden", "16"}, 1, "8 hidden units"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, got := runTlearn(t, append([]string{"finetune", "--device", "cpu", "--threads", "1", "--epochs", "1", "--quiet"}, tc.args...)...)
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.want, got)
			}
		})
	}
}
