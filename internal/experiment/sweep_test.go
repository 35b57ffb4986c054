package experiment

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

func TestParseSweep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		specs []string
		want  []Axis
		err   string
	}{
		{"two axes", []string{"lr=1e-2,1e-4", "dropout=0, 0.5"}, []Axis{{"lr", []string{"1e-2", "1e-4"}}, {"dropout", []string{"0", "0.5"}}}, ""},
		{"repeated value", []string{"hidden=8,8,16"}, []Axis{{"hidden", []string{"8", "16"}}}, ""},
		{"no values", []string{"lr="}, nil, "want KEY=V1,V2"},
		{"unknown key", []string{"momentum=1,2"}, nil, `unknown key "momentum"`},
		{"bad value", []string{"lr=1e-3,fast"}, nil, `bad value "fast"`},
		{"zero learning rate", []string{"lr=0"}, nil, `bad value "0"`},
		{"key twice", []string{"lr=1", "lr=2"}, nil, "swept twice"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := ParseSweep(tc.specs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrSettings) {
					t.Errorf("error %v, want one wrapping ErrSettings with %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.EqualFunc(got, tc.want, func(a, b Axis) bool { return a.Key == b.Key && slices.Equal(a.Values, b.Values) }) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func ExampleParseSweep() {
	axes, err := ParseSweep([]string{"lr=1e-3,1e-4", "dropout=0,0.5"})
	if err != nil {
		panic(err)
	}
	runs, err := combinations(head.Settings{}, axes)
	if err != nil {
		panic(err)
	}
	for _, r := range runs {
		fmt.Println(r.Name)
	}
	// Output:
	// lr-1e-3_dropout-0
	// lr-1e-3_dropout-0.5
	// lr-1e-4_dropout-0
	// lr-1e-4_dropout-0.5
}

// The ranked table and sweep.csv count epochs from 1, as the console does,
// and a second sweep reuses every run.
func TestSweep(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog", "fox"})
	axes, err := ParseSweep([]string{"lr=1e-2,1e-4", "seed=1,2"})
	if err != nil {
		t.Fatal(err)
	}
	s := SweepSettings{Train: train, Val: val, Out: filepath.Join(root, "sweep"), Base: head.Settings{Hidden: 8, Epochs: 3}, Axes: axes}
	var rec progress.Recorder
	res, err := Sweep(context.Background(), s, &rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 4 {
		t.Fatalf("%d runs, want 4", len(res.Runs))
	}
	for i, r := range res.Runs {
		if i > 0 && r.Metrics.Best.ValAccuracy > res.Runs[i-1].Metrics.Best.ValAccuracy {
			t.Errorf("runs not ranked by best val_accuracy: %s after %s", r.Name, res.Runs[i-1].Name)
		}
		if r.Reused {
			t.Errorf("%s reused in a fresh sweep", r.Name)
		}
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.CSV)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][3] != "best_epoch" {
		t.Fatalf("sweep.csv: %q %v", b, err)
	}
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	for i, r := range res.Runs {
		h, err := rundir.ReadHistory(filepath.Join(r.Dir, rundir.HistoryFile))
		if err != nil {
			t.Fatal(err)
		}
		want := h.Best() + 1 // the position in the history, from 1
		fields := strings.Fields(lines[i+1])
		if rows[i+1][1] != r.Name || rows[i+1][3] != strconv.Itoa(want) || fields[1] != r.Name || fields[3] != strconv.Itoa(want) {
			t.Errorf("%s: best epoch %d; sweep.csv says %v, the table %v", r.Name, want, rows[i+1], fields)
		}
	}

	rec = progress.Recorder{}
	again, err := Sweep(context.Background(), s, &rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Runs {
		if !r.Reused || r.Name != res.Runs[i].Name {
			t.Errorf("second sweep: run %d is %s (reused %v), want %s reused", i, r.Name, r.Reused, res.Runs[i].Name)
		}
	}
	if n := strings.Count(strings.Join(rec.Logs(), "\n"), "reusing the finished run"); n != 4 {
		t.Errorf("%d runs logged as reused, want 4:\n%s", n, strings.Join(rec.Logs(), "\n"))
	}

	s.Base.Hidden = 16
	if _, err := Sweep(context.Background(), s, nil); !errors.Is(err, rundir.ErrExists) {
		t.Errorf("a sweep over runs of other settings: %v, want rundir.ErrExists", err)
	}
}

func TestTrainRefusesExistingRun(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	s := TrainSettings{Train: train, Val: val, Out: filepath.Join(root, "run"), Head: head.Settings{Hidden: 4, Epochs: 1}}
	if _, err := Train(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(context.Background(), s, nil); !errors.Is(err, rundir.ErrExists) {
		t.Errorf("second run: %v, want rundir.ErrExists", err)
	}
	s.Overwrite = true
	if _, err := Train(context.Background(), s, nil); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	s.Val = ""
	if _, err := Train(context.Background(), s, nil); !errors.Is(err, ErrNoValCache) {
		t.Errorf("no validation cache: %v, want ErrNoValCache", err)
	}
}

// TestTrainChecksOutBeforeWork checks that a run directory that cannot be
// created fails before the first epoch, naming the run directory, not
// after training. Its parent is a regular file, which holds as root too.
func TestTrainChecksOutBeforeWork(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(file, "run")
	for _, tc := range []struct {
		desc string
		fn   func(p progress.Reporter) error
	}{
		{"train", func(p progress.Reporter) error {
			_, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: out, Head: head.Settings{Hidden: 4, Epochs: 2}}, p)
			return err
		}},
		{"sweep", func(p progress.Reporter) error {
			axes, err := ParseSweep([]string{"lr=1e-3,1e-2"})
			if err != nil {
				return err
			}
			_, err = Sweep(context.Background(), SweepSettings{Train: train, Val: val, Out: out, Base: head.Settings{Hidden: 4, Epochs: 2}, Axes: axes}, p)
			return err
		}},
		{"finetune", func(p progress.Reporter) error {
			_, err := FineTune(context.Background(), FineTuneSettings{Model: t.TempDir(), Train: train, Val: val, Out: out}, p)
			return err
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var rec progress.Recorder
			err := tc.fn(&rec)
			if !errors.Is(err, fsutil.ErrUnwritable) || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), file+" is a regular file") {
				t.Fatalf("err = %v, want fsutil.ErrUnwritable naming %s", err, out)
			}
			for _, e := range rec.Events {
				if strings.Contains(e, "epoch") {
					t.Fatalf("trained before failing: %q", e)
				}
			}
		})
	}
}

// TestTrainManyClassesBounded checks that a run of thousands of one-image
// classes finishes promptly and writes metrics.json and confusion.png whose
// sizes do not grow with the square of the class count.
func TestTrainManyClassesBounded(t *testing.T) {
	t.Parallel()
	const k = 3000
	root := t.TempDir()
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("c%04d", i)
	}
	train, val := filepath.Join(root, "train"), filepath.Join(root, "val")
	fixtures.FeatureCache(t, train, k, 8, classes, "aaaa", 1)
	fixtures.FeatureCache(t, val, k, 8, classes, "aaaa", 2)
	out := filepath.Join(root, "run")
	fixtures.Within(t, 3*time.Minute, nil, func() {
		_, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: out, Head: head.Settings{Hidden: 4, Epochs: 1}}, nil)
		if err != nil {
			t.Error(err)
		}
	})
	for name, most := range map[string]int64{rundir.MetricsFile: 200 * k, rundir.ConfusionFile: 1 << 20} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > most {
			t.Errorf("%s of %d classes is %d bytes, want at most %d", name, k, st.Size(), most)
		}
	}
}

// TestRankRunsOnHoldout: with a holdout the runs are ranked on the best
// epoch's holdout accuracy, not the validation accuracy that disagrees;
// ties go to the lower holdout loss, then the fewer hidden units, then the
// earlier best epoch.
func TestRankRunsOnHoldout(t *testing.T) {
	t.Parallel()
	run := func(name string, hidden, epoch int, hold, holdLoss, val float64) SweepRun {
		return SweepRun{Name: name, Settings: head.Settings{Hidden: hidden, NoHidden: hidden == 0},
			Run: Run{Metrics: &rundir.Metrics{Best: head.Epoch{Epoch: epoch, HasHoldout: true, HoldoutAccuracy: hold, HoldoutLoss: holdLoss, ValAccuracy: val}}}}
	}
	runs := []SweepRun{
		run("val-best", 64, 3, 0.70, 0.5, 0.99),
		run("later", 8, 9, 0.80, 0.4, 0.5),
		run("big", 64, 2, 0.80, 0.4, 0.5),
		run("lossy", 8, 2, 0.80, 0.6, 0.5),
		run("small", 8, 2, 0.80, 0.4, 0.5),
		run("hold-best", 64, 4, 0.90, 0.7, 0.6),
	}
	rankRuns(runs)
	var got []string
	for _, r := range runs {
		got = append(got, r.Name)
	}
	want := []string{"hold-best", "small", "later", "big", "lossy", "val-best"}
	if !slices.Equal(got, want) {
		t.Errorf("ranked %v, want %v", got, want)
	}
	var b strings.Builder
	if err := (&SweepResult{Runs: runs}).WriteCSV(&b); err != nil || !strings.HasPrefix(b.String(), "rank,run,best_holdout_accuracy,best_holdout_loss,best_epoch,best_epoch_val_accuracy,") {
		t.Errorf("sweep.csv with a holdout: %q, %v", b.String(), err)
	}
}
