package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
)

// compareFixture is a prepared tiny VGG and settings for a small
// comparison of its train/val class folders.
func compareFixture(t *testing.T) CompareSettings {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if _, err := models.WriteTinyPrepared(model, 3); err != nil {
		t.Fatal(err)
	}
	train, val := filepath.Join(dir, "train"), filepath.Join(dir, "val")
	for i, class := range []string{"ant", "bee", "cow"} {
		fixtures.ClassImages(t, train, class, 12, uint64(10+i))
		fixtures.ClassImages(t, val, class, 4, uint64(20+i))
	}
	return CompareSettings{
		Model: model, TrainData: train, ValData: val, Out: filepath.Join(dir, "report"),
		Size: 32, Epochs: 3, FineTuneEpochs: 2, Batch: 8, LR: 1e-3, Seed: 5,
		Runtime: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1},
	}
}

// stageRecorder records compare's stage events, and calls onStage (when
// set) as each stage starts.
type stageRecorder struct {
	progress.Recorder
	mu      sync.Mutex
	ran     []string // stages run
	reused  []string // stages reused
	onStage func(name string)
}

func (r *stageRecorder) Stage(e StageEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Reused {
		r.reused = append(r.reused, e.Name)
		return
	}
	r.ran = append(r.ran, e.Name)
	if r.onStage != nil {
		r.onStage(e.Name)
	}
}

// An interrupted comparison reuses the finished stages on the next call,
// and a finished one only checks its caches.
func TestCompareResumes(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &stageRecorder{onStage: func(name string) {
		if name == stageFineTune {
			cancel()
		}
	}}
	if _, err := Compare(ctx, s, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted comparison: err = %v, want context.Canceled", err)
	}
	weights := filepath.Join(s.Out, compareHeadDir, rundir.WeightsFile)
	before, err := os.Stat(weights)
	if err != nil {
		t.Fatalf("the head stage did not finish before the interruption: %v", err)
	}
	if fileExists(filepath.Join(s.Out, compareFTDir, rundir.MetricsFile)) {
		t.Fatal("the fine-tune stage ran despite the interruption")
	}

	second := &stageRecorder{}
	res, err := Compare(context.Background(), s, second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{stageExtract, stageFineTune, stageExportHead, stageExportFineTune,
		stageExtractBest, stageFTBest, stageExportBest}; !slices.Equal(second.ran, want) {
		t.Errorf("resumed comparison ran %v, want %v", second.ran, want)
	}
	if !slices.Equal(second.reused, []string{stageHead}) {
		t.Errorf("resumed comparison reused %v, want the head stage", second.reused)
	}
	if after, err := os.Stat(weights); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the head run was redone: %v", err)
	}
	var names []string
	for _, st := range res.Stages {
		names = append(names, st.Name)
		if wantReused := st.Name == stageHead; !checksCaches(st.Name) && st.Reused != wantReused {
			t.Errorf("stage %s: reused %v", st.Name, st.Reused)
		}
	}
	if want := []string{stageExtract, stageHead, stageFineTune, stageExportHead, stageExportFineTune,
		stageExtractBest, stageFTBest, stageExportBest}; !slices.Equal(names, want) {
		t.Errorf("result stages %v, want %v", names, want)
	}

	third := &stageRecorder{}
	if _, err := Compare(context.Background(), s, third); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.ran, []string{stageExtract, stageExtractBest}) || len(third.reused) != 6 {
		t.Errorf("third comparison ran %v and reused %v, want only the extractions' checks to run", third.ran, third.reused)
	}
	if !slices.ContainsFunc(third.Logs(), func(l string) bool { return strings.Contains(l, "up to date") }) {
		t.Errorf("the extraction did not report up-to-date caches:\n%s", strings.Join(third.Logs(), "\n"))
	}
}

// The report's table and stages come from the runs and the record.
func TestCompareReport(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	s.ValData, s.Val = "", 0.25
	res, err := Compare(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--val 0.25 --seed 5", "tlearn finetune --model", "2 epochs instead of the tutorial's 50", "32×32 instead of 224"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	for _, want := range []string{"head-only (VGG16 frozen)", "block5 fine-tuned", "feature extraction"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, table.String())
		}
	}
	if !fileExists(res.Curves) || !fileExists(filepath.Join(s.Out, compareFTDir, classifierFile)) {
		t.Error("curves.png or the fine-tuned classifier is missing")
	}
}

func TestCompareSettingsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		edit func(*CompareSettings)
		want error
	}{
		{"no validation data", func(s *CompareSettings) { s.ValData = "" }, ErrSettings},
		{"both validation settings", func(s *CompareSettings) { s.Val = 0.2 }, ErrSettings},
		{"negative epochs", func(s *CompareSettings) { s.Epochs = -1 }, ErrSettings},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := CompareSettings{Model: "m", TrainData: "t", ValData: "v", Out: t.TempDir()}
			tc.edit(&s)
			if _, err := Compare(context.Background(), s, nil); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"models", "prepare", "--onnx", "/home/me/.cache/tlearn/models/vgg16-12/vgg16/vgg16.onnx", "--out", "model"},
			"tlearn models prepare --onnx /home/me/.cache/tlearn/models/vgg16-12/vgg16/vgg16.onnx --out model"},
		{[]string{"export", "--run", "/my runs/r", "--out", "/it's/c.onnx"}, `tlearn export --run '/my runs/r' --out '/it'\''s/c.onnx'`},
		{[]string{"train", "--val", ""}, "tlearn train --val ''"},
	} {
		if got := CommandLine(tc.args); got != tc.want {
			t.Errorf("CommandLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}
