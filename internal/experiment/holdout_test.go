package experiment

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// TestFineTuneHoldout: a fine-tuning run with a holdout records its
// fraction, seed and size in settings.json and selects on it.
func TestFineTuneHoldout(t *testing.T) {
	ortlibtest.Init(t)
	cs := compareFixture(t)
	root, train, val := splitMapsCaches(t, cs)
	out := filepath.Join(root, "ft")
	s := FineTuneSettings{Model: cs.Model, Train: train, Val: val, Out: out,
		Tuning: finetune.Settings{Settings: head.Settings{Hidden: 4, Epochs: 2, Batch: 8, LR: 1e-3, Holdout: 0.25, HoldoutSeed: 3, SaveBest: true}, Runtime: cs.Runtime}}
	if _, err := FineTune(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	var rs struct {
		rundir.Info
		Holdout     float64 `json:"holdout"`
		HoldoutSeed uint64  `json:"holdout_seed"`
	}
	if b, err := os.ReadFile(filepath.Join(out, rundir.SettingsFile)); err != nil || json.Unmarshal(b, &rs) != nil {
		t.Fatalf("settings.json: %v", err)
	}
	if rs.Holdout != 0.25 || rs.HoldoutSeed != 3 {
		t.Errorf("settings.json: holdout %g, seed %d; want 0.25 and 3", rs.Holdout, rs.HoldoutSeed)
	}
	m, err := rundir.ReadMetrics(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.HoldoutN == 0 || rs.HoldoutN >= rs.TrainCache.N || m.SelectedOn != head.SelectedOnHoldout || !m.Best.HasHoldout {
		t.Errorf("held out %d of %d maps, selected on %q", rs.HoldoutN, rs.TrainCache.N, m.SelectedOn)
	}
	h, err := rundir.ReadHistory(filepath.Join(out, rundir.HistoryFile))
	if err != nil || !h.HasHoldout() {
		t.Errorf("history.csv without the holdout: %v", err)
	}
}
