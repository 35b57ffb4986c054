package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// autoSpace is a search whose answer is known: on the fixture's separable
// clusters a head with a useful learning rate beats two that, at 1e-7,
// cannot move from their random start in a few epochs.
var autoSpace = []AutoCandidate{
	{Hidden: 0, LR: 1e-7},
	{Hidden: 16, LR: 1e-2},
	{Hidden: 16, Dropout: 0.5, LR: 1e-7},
}

// cancelOn cancels when a message containing at is logged.
type cancelOn struct {
	progress.Recorder
	at     string
	cancel func()
}

func (r *cancelOn) Log(msg string) {
	r.Recorder.Log(msg)
	if strings.Contains(msg, r.at) {
		r.cancel()
	}
}

// TestAuto: the search picks the candidate with the best holdout accuracy,
// says why, retrains it on every training image (the same weights as a
// plain Train of those settings), records the search in settings.json,
// leaves nothing beside the run, and resumes an interrupted search.
func TestAuto(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog", "fox"})
	s := AutoSettings{Train: train, Val: val, Out: filepath.Join(root, "auto"), Space: autoSpace}
	s.Base.Epochs, s.Base.Seed, s.Base.Holdout = 6, 2, 0.2
	res, err := Auto(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	win := res.Search.Runs[0]
	for _, r := range res.Search.Runs[1:] {
		if r.Metrics.Best.HoldoutAccuracy >= win.Metrics.Best.HoldoutAccuracy {
			t.Errorf("%s (holdout %.4f) is not behind the winner %s (%.4f)", r.Name, r.Metrics.Best.HoldoutAccuracy, win.Name, win.Metrics.Best.HoldoutAccuracy)
		}
	}
	if win.Name != autoSpace[1].Name() || !strings.Contains(res.Why, "the highest holdout accuracy") {
		t.Fatalf("chose %s because %q; want %s by holdout accuracy", win.Name, res.Why, autoSpace[1].Name())
	}
	rs, err := rundir.ReadHeadSettings(s.Out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Holdout != 0 || rs.HoldoutN != 0 || rs.EarlyStop != 0 || rs.Epochs != win.BestEpoch() || rs.LR != 1e-2 || rs.Hidden != 16 || rs.TrainCache.N != 60 {
		t.Errorf("the retrained run's settings: %+v; want all 60 images, %d epochs, lr 0.01, hidden 16", rs, win.BestEpoch())
	}
	var rec struct{ Auto AutoRecord }
	if b, err := os.ReadFile(filepath.Join(s.Out, rundir.SettingsFile)); err != nil || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("settings.json: %v", err)
	}
	if a := rec.Auto; a.Chosen != win.Name || len(a.Tried) != 3 || a.HoldoutN != 12 || a.Holdout != 0.2 || a.Patience != DefaultAutoPatience || a.Why != res.Why ||
		a.Tried[0].Name != win.Name || a.Tried[0].HoldoutAccuracy != win.Metrics.Best.HoldoutAccuracy {
		t.Errorf("settings.json's auto record: %+v", a)
	}
	// The retrain is a plain training on all rows with those settings.
	plain := filepath.Join(root, "plain")
	if _, err := Train(context.Background(), TrainSettings{Train: train, Val: val, Out: plain, Head: res.Retrained}, nil); err != nil {
		t.Fatal(err)
	}
	if ps, err := rundir.ReadHeadSettings(plain); err != nil || ps.WeightsSHA256 != rs.WeightsSHA256 {
		t.Errorf("the retrained weights differ from a plain Train's of the same settings on all rows (%v)", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 3 {
		t.Errorf("beside the run: %v; want cache, auto and plain", entries)
	}

	// Interrupted in its second candidate, the search resumes with the
	// first and ends where the uninterrupted one did.
	s2 := s
	s2.Out = filepath.Join(root, "resumed")
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelOn{at: "[2/3 ", cancel: cancel}
	if _, err := Auto(ctx, s2, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted search: %v", err)
	}
	if _, err := os.Stat(SearchPath(s2.Out)); err != nil {
		t.Fatalf("the interrupted search was not kept: %v", err)
	}
	rec2 := &progress.Recorder{}
	res2, err := Auto(context.Background(), s2, rec2)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(rec2.Logs(), "\n"), "reusing the finished run"); n != 1 {
		t.Errorf("%d candidates reused, want 1", n)
	}
	if rs2, _ := rundir.ReadHeadSettings(s2.Out); rs2 == nil || rs2.WeightsSHA256 != rs.WeightsSHA256 || res2.Why != res.Why {
		t.Error("the resumed search ended elsewhere")
	}
	if _, err := os.Stat(SearchPath(s2.Out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the finished search is still there: %v", err)
	}
}

// TestAutoSecondWriter: while another writer holds the output's lock,
// Auto stops at once, naming it, and writes nothing (no search either).
func TestAutoSecondWriter(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog", "fox"})
	out := filepath.Join(root, "auto")
	l, err := fsutil.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	_, err = Auto(context.Background(), AutoSettings{Train: train, Val: val, Out: out, Space: autoSpace}, nil)
	if !errors.Is(err, fsutil.ErrLocked) {
		t.Fatalf("second writer: %v, want fsutil.ErrLocked", err)
	}
	for _, p := range []string{out, SearchPath(out)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want nothing written", p, err)
		}
	}
}

// TestWhyWon: the line names the criterion that put the winner ahead of
// the runner-up.
func TestWhyWon(t *testing.T) {
	t.Parallel()
	run := func(name string, hidden, epoch int, acc, loss float64) SweepRun {
		return SweepRun{Name: name, Settings: head.Settings{Hidden: hidden, NoHidden: hidden == 0},
			Run: Run{Metrics: &rundir.Metrics{Best: head.Epoch{Epoch: epoch, HasHoldout: true, HoldoutAccuracy: acc, HoldoutLoss: loss}}}}
	}
	for _, tc := range []struct {
		desc string
		runs []SweepRun
		want string
	}{
		{"accuracy", []SweepRun{run("a", 8, 3, 0.9, 0.5), run("b", 8, 3, 0.8, 0.1)}, "the highest holdout accuracy, 0.1000 ahead of the next, b (0.8000)"},
		{"loss", []SweepRun{run("a", 8, 3, 0.9, 0.4), run("b", 8, 3, 0.9, 0.5)}, "tied on holdout accuracy with 1 other(s), the lowest holdout loss"},
		{"size", []SweepRun{run("a", 0, 3, 0.9, 0.5), run("b", 8, 3, 0.9, 0.5)}, "simpler: 0 hidden units against 8"},
		{"epochs", []SweepRun{run("a", 8, 2, 0.9, 0.5), run("b", 8, 3, 0.9, 0.5)}, "simpler: 2 epochs against 3"},
		{"order", []SweepRun{run("a", 8, 3, 0.9, 0.5), run("b", 8, 3, 0.9, 0.5)}, "first in the search's order"},
		{"alone", []SweepRun{run("a", 8, 3, 0.9, 0.5)}, "the only candidate"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := whyWon(tc.runs); !strings.HasPrefix(got, "a (holdout accuracy 0.9000") || !strings.Contains(got, tc.want) {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}
