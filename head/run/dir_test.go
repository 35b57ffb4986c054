package run

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// trainedRun trains a small head and returns what Write needs.
func trainedRun(t testing.TB) *Contents {
	t.Helper()
	train, val := clusters(60, 5, 3, 1), clusters(30, 5, 3, 2)
	res, err := head.Train(context.Background(), train, val, head.Settings{Hidden: 8, Epochs: 3, LR: 1e-2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := head.Evaluate(context.Background(), res.Weights, val, 2)
	if err != nil {
		t.Fatal(err)
	}
	info := Info{Mode: ModeHead, ModelDir: "/models/vgg", ModelSHA256: "abc", Classes: train.Classes,
		TrainCache: CacheRef{Dir: "/c/train", Fingerprint: "f", N: 60}, ValCache: CacheRef{Dir: "/c/val", Fingerprint: "f", N: 30},
		Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	return &Contents{
		Settings: HeadSettings{Info: info, Settings: res.Settings},
		Weights:  res.Weights, History: res.History, Title: "test run",
		Metrics: NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, rep),
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	run := trainedRun(t)
	dir := filepath.Join(t.TempDir(), "runs", "a")
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{SettingsFile, WeightsFile, HistoryFile, MetricsFile, CurvesFile, ConfusionFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	s, err := ReadHeadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.ModelDir != "/models/vgg" || s.Hidden != 8 || s.Dropout != 0.5 || s.Mode != ModeHead {
		t.Errorf("settings.json read back as %+v", s)
	}
	info, err := ReadInfo(dir)
	if err != nil || info.ValCache.N != 30 {
		t.Fatalf("ReadRunInfo: %+v, %v", info, err)
	}
	m, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.EpochsRun != 3 || m.Final.Epoch != 3 || m.Best.Epoch < 1 || m.Validation == nil || m.Validation.N != 30 {
		t.Errorf("metrics.json read back as %+v", m)
	}
	h, err := ReadHistory(filepath.Join(dir, HistoryFile))
	if err != nil || len(h) != 3 {
		t.Fatalf("history: %v, %v", h, err)
	}
	if _, err := LoadWeights(filepath.Join(dir, WeightsFile)); err != nil {
		t.Fatal(err)
	}
	if s.Holdout != 0 || s.HoldoutN != 0 || m.SelectedOn != head.SelectedOnValidation {
		t.Errorf("a run without a holdout reads back with holdout %g of %d rows, selected on %q", s.Holdout, s.HoldoutN, m.SelectedOn)
	}
	// Nothing but the run is left in the parent folder.
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("parent folder holds %d entries, want just the run", len(entries))
	}

	// An existing run is kept unless overwriting is asked for.
	if err := Write(dir, run); !errors.Is(err, ErrExists) {
		t.Fatalf("second Write: %v, want ErrExists", err)
	}
	run.Overwrite = true
	run.History = run.History[:2]
	run.Metrics.EpochsRun = 2
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	if m, _ := ReadMetrics(dir); m == nil || m.EpochsRun != 2 {
		t.Errorf("the run was not replaced: %+v", m)
	}
	entries, _ = os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("parent folder holds %d entries after replacing, want 1", len(entries))
	}
}

func TestDirAbort(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	rd, err := Create(filepath.Join(parent, "run"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rd.Path("x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rd.Abort()
	rd.Abort()
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("Abort left %d entries", len(entries))
	}
}

func TestReadRunErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		desc, settings, want string
	}{
		{"no run", "", "not a run directory"},
		{"bad json", "{", "settings.json"},
		{"bad mode", `{"mode":"x","model_dir":"/m","classes":["a"]}`, `mode "x"`},
		{"no model", `{"mode":"head","classes":["a"]}`, "no model_dir"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tc.desc, " ", "_"))
			os.MkdirAll(d, 0o755)
			if tc.settings != "" {
				os.WriteFile(filepath.Join(d, SettingsFile), []byte(tc.settings), 0o644)
			}
			_, err := ReadInfo(d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, ErrNotRun) != (tc.settings == "") {
				t.Errorf("error %v wraps ErrNotRun: %v", err, errors.Is(err, ErrNotRun))
			}
		})
	}
	if _, err := ReadInfo(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestPlots(t *testing.T) {
	t.Parallel()
	run := trainedRun(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		desc string
		draw func(path string) error
	}{
		{"curves", func(p string) error { return PlotCurves(p, "a title", Series{History: run.History}) }},
		{"two series", func(p string) error {
			return PlotCurves(p, "", Series{Name: "head", History: run.History}, Series{Name: "fine-tune", History: run.History[:1], ValidationOnly: true})
		}},
		{"confusion", func(p string) error { return PlotConfusion(p, "confusion", run.Metrics.Validation) }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := filepath.Join(dir, tc.desc+".png")
			if err := tc.draw(p); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cfg, err := png.DecodeConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Width < 400 || cfg.Height < 300 {
				t.Errorf("%dx%d pixels is too small to read", cfg.Width, cfg.Height)
			}
		})
	}
}

// TestCreateReplacesOnlyRuns: with overwrite, Create replaces a run
// directory or an empty folder, never a file or a folder of other content,
// which stay as they were.
func TestCreateReplacesOnlyRuns(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	runDir := filepath.Join(root, "run")
	if err := Write(runDir, trainedRun(t)); err != nil {
		t.Fatal(err)
	}
	photos := filepath.Join(root, "photos")
	if err := os.MkdirAll(filepath.Join(photos, "cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "notes.txt")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, dir string
		want      string // "" for no error
	}{
		{"a run", runDir, ""},
		{"an empty folder", empty, ""},
		{"a dataset", photos, photos + " is not a tlearn run folder (it holds cat/)"},
		{"a file", file, file + " is a file, not a tlearn run folder"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rd, err := Create(tc.dir, true)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				rd.Abort()
				return
			}
			if !errors.Is(err, fsutil.ErrForeign) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want fsutil.ErrForeign containing %q", err, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Errorf("%s: %q, %v", file, b, err)
	}
	if _, err := os.Stat(filepath.Join(photos, "cat")); err != nil {
		t.Error(err)
	}
}

// TestWeightsChecked: Write records the weights' sha256 in settings.json
// and LoadWeights refuses a changed file, naming it; without the record (a
// run of an older tlearn) the weights load, and NoteUnchecked says so.
func TestWeightsChecked(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "run")
	if err := Write(dir, trainedRun(t)); err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.WeightsSHA256 == "" || info.NoteUnchecked(dir) != "" {
		t.Fatalf("settings.json records weights sha256 %q", info.WeightsSHA256)
	}
	p := filepath.Join(dir, WeightsFile)
	if _, err := LoadWeights(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	if _, err := LoadWeights(p); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadWeights of a changed file: %v; want ErrChanged naming %s", err, p)
	}
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	info.WeightsSHA256 = ""
	if err := WriteJSON(filepath.Join(dir, SettingsFile), info); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(p); err != nil {
		t.Errorf("LoadWeights of an older run: %v", err)
	}
	if note := info.NoteUnchecked(dir); !strings.Contains(note, "older tlearn") {
		t.Errorf("NoteUnchecked: %q", note)
	}
}

// TestWriteErrorsNameFinalPath checks that a file that cannot be written
// is named by its final path in the run directory, not by the hidden
// .NAME.partial-* folder that is gone when the user reads the error.
func TestWriteErrorsNameFinalPath(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "run")
	c := trainedRun(t)
	c.Settings = make(chan int) // JSON cannot encode it
	err := Write(dir, c)
	want := filepath.Join(dir, SettingsFile)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), ".partial-") {
		t.Fatalf("err = %v, want one naming %s and no temporary folder", err, want)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("left %v behind", ents)
	}
}

// TestPlotConfusionManyClasses checks that the confusion plot of thousands
// of classes is drawn promptly and stays small: the top confusions, not a
// grid of millions of cells.
func TestPlotConfusionManyClasses(t *testing.T) {
	t.Parallel()
	const k = 3000
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("class-%d", i)
	}
	tally := head.NewTally(classes, 5)
	probs := make([]float32, k)
	for i := range k {
		clear(probs)
		probs[(i+1)%k] = 1
		tally.AddProbs(i, probs)
	}
	path := filepath.Join(t.TempDir(), "confusion.png")
	fixtures.Within(t, 2*time.Minute, nil, func() {
		if err := PlotConfusion(path, "many classes", tally.Report()); err != nil {
			t.Error(err)
		}
	})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Errorf("confusion.png of %d classes is %d bytes, want at most 1 MiB", k, st.Size())
	}
	f, _ := os.Open(path)
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width > 2000 || cfg.Height > 2000 {
		t.Errorf("confusion.png is %dx%d (%v), want at most 2000 pixels a side", cfg.Width, cfg.Height, err)
	}
}

// TestWriteHoldout: the holdout's fraction, seed and size go into
// settings.json and come back, so that the carve can be made again, and
// metrics.json says the epoch was selected on it.
func TestWriteHoldout(t *testing.T) {
	t.Parallel()
	train, val := clusters(60, 5, 3, 1), clusters(30, 5, 3, 2)
	res, err := head.Train(context.Background(), train, val, head.Settings{Hidden: 8, Epochs: 3, LR: 1e-2, Holdout: 0.2, HoldoutSeed: 7, SaveBest: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := Info{Mode: ModeHead, ModelDir: "/models/vgg", Classes: train.Classes, HoldoutN: res.HoldoutN,
		TrainCache: CacheRef{Dir: "/c/train", N: 60}, ValCache: CacheRef{Dir: "/c/val", N: 30}}
	dir := filepath.Join(t.TempDir(), "run")
	err = Write(dir, &Contents{
		Settings: HeadSettings{Info: info, Settings: res.Settings}, Weights: res.Weights, History: res.History, Title: "holdout",
		Metrics: NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadHeadSettings(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Settings != res.Settings || s.HoldoutN != 12 {
		t.Errorf("settings.json read back as %+v with %d held out; want %+v and 12", s.Settings, s.HoldoutN, res.Settings)
	}
	tr, hold, err := s.Settings.Rows(train.Y, s.Classes)
	if err != nil || len(hold) != s.HoldoutN || len(tr)+len(hold) != s.TrainCache.N {
		t.Errorf("the carve made again from settings.json: %d + %d rows, %v", len(tr), len(hold), err)
	}
	m, err := ReadMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.SelectedOn != head.SelectedOnHoldout || !m.Best.HasHoldout || m.Best.Epoch != res.WeightsEpoch {
		t.Errorf("metrics.json: selected on %q, best %+v, weights of epoch %d", m.SelectedOn, m.Best, res.WeightsEpoch)
	}
	h, err := ReadHistory(filepath.Join(dir, HistoryFile))
	if err != nil || !h.HasHoldout() {
		t.Errorf("history.csv read back without its holdout: %v", err)
	}
}
