package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

var (
	tutorialStages = []string{stageExtract, stageHead, stageFineTune, stageExportHead, stageExportFineTune}
	// The recommended recipe's stages: a new head, so no head-only stage.
	bestStages = []string{stageExtractBest, stageFTBest, stageExportBest}
)

// The "tlearn best" row is the recommended recipe: its own cache of
// bilinear, augmented views; a head and a fine-tuning from that head that
// both select on the holdout and keep the selected epoch; a classifier of
// the fine-tuned run that records bilinear; and a row in the report whose
// "final" numbers are the selected epoch's.
func TestCompareBest(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	s.ValData, s.Val = "", 0.25 // the split path of both extractions
	r := Recommended
	r.HeadEpochs = 0 // compare's --epochs: a short test
	// The two-stage form: fine-tuning from the head-only stage's head, at a
	// constant rate for compare's fine-tuning epochs, selecting on the
	// holdout.
	r.FreshHead, r.FineTuneEpochs, r.FineTuneSchedule, r.FineTuneLastEpoch = false, 0, head.ScheduleConstant, false
	s.Recipe = &r
	res, err := Compare(context.Background(), s, &stageRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"train", "val"} {
		m, err := cache.ReadManifest(filepath.Join(s.Out, compareBestCacheDir, part))
		if err != nil {
			t.Fatal(err)
		}
		if m.Interpolation != string(dataset.Bilinear) || m.Views != r.Views || m.Augment == nil || m.Augment.Seed != s.Seed || m.Size != 32 {
			t.Errorf("%s cache: interpolation %q, %d views, augment %+v, size %d; want bilinear, %d views augmented with seed %d, size 32",
				part, m.Interpolation, m.Views, m.Augment, m.Size, r.Views, s.Seed)
		}
	}
	for _, dir := range []string{compareHeadBestDir, compareFTBestDir} {
		m, err := rundir.ReadMetrics(filepath.Join(s.Out, dir))
		if err != nil {
			t.Fatal(err)
		}
		if m.SelectedOn != head.SelectedOnHoldout || m.WeightsEpoch != m.Best.Epoch {
			t.Errorf("%s: selected on %q, kept epoch %d of best %d; want the holdout's best epoch kept", dir, m.SelectedOn, m.WeightsEpoch, m.Best.Epoch)
		}
	}
	if res.Best == nil || res.Best.WeightsEpoch != res.Best.Best.Epoch {
		t.Errorf("result's best row: %+v", res.Best)
	}

	byName := map[string]*Stage{}
	for _, st := range res.Stages {
		byName[st.Name] = &st
	}
	want := map[string][]string{
		stageExtractBest: {"--interpolation bilinear", fmt.Sprintf("--views %d", r.Views), "--augment " + r.Augment, "--augment-seed 5", "--val 0.25 --seed 5", "--maps"},
		stageHeadBest:    {"tlearn train", "--lr 0.0003", "--ema 0.999", "--holdout 0.1", "--save-best", "--tta", "--epochs 3", "--seed 5"},
		stageFTBest: {"tlearn finetune", "--init-head " + filepath.Join(s.Out, compareHeadBestDir), "--lr 0.0001", "--block5-lr 0.0001",
			"--epochs 2", "--holdout 0.1", "--save-best", "--tta"},
		stageExportBest: {"tlearn export --run " + filepath.Join(s.Out, compareFTBestDir)},
	}
	for name, parts := range want {
		lines := strings.Join(byName[name].CommandLines(), "\n")
		for _, p := range parts {
			if !strings.Contains(lines, p) {
				t.Errorf("stage %s: %q lacks %q", name, lines, p)
			}
		}
	}
	if strings.Contains(strings.Join(byName[stageHeadBest].CommandLines(), " "), "--no-shuffle") {
		t.Error("the best row took the tutorial's --no-shuffle")
	}

	m, err := models.Load(filepath.Join(s.Out, compareFTBestDir, classifierFile))
	if err != nil {
		t.Fatal(err)
	}
	info, err := classifier.ReadInfo(m)
	if err != nil {
		t.Fatal(err)
	}
	if info.Interpolation != dataset.Bilinear || info.Size != 32 {
		t.Errorf("best classifier records %s at %d, want bilinear at 32", info.Interpolation, info.Size)
	}

	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rundir.ReadHistory(filepath.Join(s.Out, compareFTBestDir, rundir.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	sel := h[res.Best.WeightsEpoch-1]
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| " + bestMode + " | " + fmtAcc(sel.Accuracy) + " | " + fmtAcc(sel.ValAccuracy) + " | " + fmtAcc(sel.ValLoss) + " | ",
		"the exported `finetune-best/classifier.onnx` is the plain model",
		"records bilinear resizing", "tlearn best: extraction of its views", "fine-tuning from that head",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	for _, want := range []string{bestMode, "tlearn best: extraction of its views"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
}

func fmtAcc(x float64) string { return fmt.Sprintf("%.4f", x) }

// A recipe with FreshHead fine-tunes block5 with a new head, as one stage
// (no head-only stage runs), for the recipe's own epochs under its
// learning-rate schedule, and the report says so. With FineTuneLastEpoch
// (the recommended recipe's) it trains on every training image and keeps
// the last epoch.
func TestCompareBestFreshHead(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	r := Recommended
	r.FreshHead, r.FineTuneEpochs, r.FineTuneSchedule = true, 3, head.ScheduleCosine
	s.Recipe = &r
	res, err := Compare(context.Background(), s, &stageRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range res.Stages {
		names = append(names, st.Name)
	}
	if want := []string{stageExtractBest, stageFTBest, stageExportBest}; !slices.Equal(names[len(names)-3:], want) || slices.Contains(names, stageHeadBest) {
		t.Errorf("stages %v, want the tutorial's then %v", names, want)
	}
	if _, err := os.Stat(filepath.Join(s.Out, compareHeadBestDir)); err == nil {
		t.Error("a head-only run was written")
	}
	var ft *Stage
	for i := range res.Stages {
		if res.Stages[i].Name == stageFTBest {
			ft = &res.Stages[i]
		}
	}
	line := strings.Join(ft.CommandLines(), " ")
	for _, p := range []string{"--epochs 3", "--lr-schedule cosine", "--tta"} {
		if !strings.Contains(line, p) {
			t.Errorf("fine-tuning %q lacks %q", line, p)
		}
	}
	for _, p := range []string{"--init-head", "--holdout", "--save-best"} {
		if strings.Contains(line, p) {
			t.Errorf("fine-tuning from a new head on every image, keeping the last epoch: %q has %q", line, p)
		}
	}
	var st fineTuneRunSettings
	if b, err := os.ReadFile(filepath.Join(s.Out, compareFTBestDir, rundir.SettingsFile)); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("settings.json of the fine-tuned run: %v", err)
	}
	if st.Settings.Schedule != head.ScheduleCosine || st.Settings.Epochs != 3 || st.InitHead != "" || res.Best.EpochsRun != 3 {
		t.Errorf("the fine-tuned run: schedule %q, %d epochs (%d run), init head %q", st.Settings.Schedule, st.Settings.Epochs, res.Best.EpochsRun, st.InitHead)
	}
	if st.Settings.Holdout != 0 || st.Settings.SaveBest || res.Best.WeightsEpoch != 3 || res.Best.SelectedOn == head.SelectedOnHoldout {
		t.Errorf("the fine-tuned run: holdout %g, save-best %v, kept epoch %d, selected on %q; want every image and the last epoch",
			st.Settings.Holdout, st.Settings.SaveBest, res.Best.WeightsEpoch, res.Best.SelectedOn)
	}
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "trains on every training image (no holdout) and keeps the last epoch") {
		t.Errorf("report.md does not say how the epoch was kept:\n%s", md)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "fine-tuning from a new head") {
		t.Errorf("the table does not say the fine-tuning started from a new head:\n%s", table.String())
	}
}

// An old report folder (the tutorial's stages only, as --no-best or a
// tlearn before the best row writes it) resumes by running only the best
// stages; --no-best then reuses every tutorial stage and reports two rows
// while stages.json keeps the best ones; --force redoes all nine.
func TestCompareBestResumesOldReport(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	s.NoBest = true
	first := &stageRecorder{}
	res, err := Compare(context.Background(), s, first)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.ran, tutorialStages) || res.Best != nil {
		t.Errorf("--no-best ran %v (best %v), want only %v", first.ran, res.Best, tutorialStages)
	}
	for _, d := range []string{compareBestCacheDir, compareHeadBestDir, compareFTBestDir} {
		if _, err := os.Stat(filepath.Join(s.Out, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--no-best made %s (%v)", d, err)
		}
	}
	assertRows(t, res, 2)

	s.NoBest = false
	second := &stageRecorder{}
	if res, err = Compare(context.Background(), s, second); err != nil {
		t.Fatal(err)
	}
	if want := append([]string{stageExtract}, bestStages...); !slices.Equal(second.ran, want) {
		t.Errorf("resuming the tutorial's report ran %v, want %v", second.ran, want)
	}
	if !slices.Equal(second.reused, tutorialStages[1:]) {
		t.Errorf("resuming the tutorial's report reused %v, want %v", second.reused, tutorialStages[1:])
	}
	assertRows(t, res, 3)

	s.NoBest = true
	third := &stageRecorder{}
	if res, err = Compare(context.Background(), s, third); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.ran, []string{stageExtract}) {
		t.Errorf("--no-best after a full report ran %v, want only the extraction's check", third.ran)
	}
	assertRows(t, res, 2)
	rec := &compareRecord{}
	if err := readJSONFile(filepath.Join(s.Out, compareStagesFile), rec); err != nil {
		t.Fatal(err)
	}
	if rec.find(stageFTBest) == nil {
		t.Error("--no-best dropped the best stages from stages.json")
	}

	s.NoBest, s.Force = false, true
	fourth := &stageRecorder{}
	if _, err = Compare(context.Background(), s, fourth); err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(tutorialStages), bestStages...); !slices.Equal(fourth.ran, want) || len(fourth.reused) != 0 {
		t.Errorf("--force ran %v and reused %v, want every stage run", fourth.ran, fourth.reused)
	}
}

// assertRows checks the rows of report.md and of the table, and that the
// stages listed in report.md are the rows'.
func assertRows(t *testing.T, res *CompareResult, n int) {
	t.Helper()
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	hasBest := n == 3
	if strings.Contains(string(md), "| "+bestMode) != hasBest || strings.Contains(table.String(), bestMode) != hasBest {
		t.Errorf("want %d rows; report.md:\n%s\ntable:\n%s", n, md, table.String())
	}
	if strings.Contains(string(md), "**"+stageFTBest+"**") != hasBest {
		t.Errorf("report.md lists the best stages: %v, want %v", !hasBest, hasBest)
	}
}

func TestRecommendedValidates(t *testing.T) {
	t.Parallel()
	if _, err := Recommended.validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		edit func(*Recipe)
	}{
		{"no holdout: it would select on --val", func(r *Recipe) { r.Holdout = 0 }},
		{"views without augmentation", func(r *Recipe) { r.Augment = "" }},
		{"tta without views", func(r *Recipe) { r.Views, r.Augment = 1, "" }},
		{"bad augmentation", func(r *Recipe) { r.Augment = "spin" }},
		{"no filter", func(r *Recipe) { r.Interpolation = "" }},
		{"zero block5 rate", func(r *Recipe) { r.Block5LR = 0 }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := Recommended
			tc.edit(&r)
			s := CompareSettings{Model: "m", TrainData: "t", ValData: "v", Out: t.TempDir(), Recipe: &r}
			if _, err := Compare(context.Background(), s, nil); !errors.Is(err, ErrSettings) {
				t.Errorf("err = %v, want ErrSettings", err)
			}
		})
	}
}
