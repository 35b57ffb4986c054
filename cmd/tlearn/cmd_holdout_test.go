package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// TestTrainHoldout: --holdout records its fraction, seed and count in
// settings.json, selects on the holdout (metrics.json, history.csv's
// columns, the sweep's table) and prints no note; without it --save-best,
// --early-stop and a sweep say once that they select on --val.
func TestTrainHoldout(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	base := []string{"tlearn", "train", "--train", train, "--val", val, "--hidden", "8", "--epochs", "4", "--lr", "0.01", "--threads", "1"}
	run := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := trainApp(&stdout, &stderr).Run(append(append([]string{}, base...), args...)); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out := filepath.Join(root, "held")
	_, errs := run("--out", out, "--holdout", "0.2", "--holdout-seed", "4", "--save-best", "--early-stop", "2")
	if strings.Contains(errs, "note:") || !strings.Contains(errs, "less a holdout of 0.2 (seed 4)") || !strings.Contains(errs, "holdout_accuracy") {
		t.Errorf("stderr with a holdout:\n%s", errs)
	}
	rs, err := rundir.ReadHeadSettings(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Holdout != 0.2 || rs.HoldoutSeed != 4 || rs.HoldoutN != 12 || rs.TrainCache.N != 60 {
		t.Errorf("settings.json: holdout %g, seed %d, %d of %d rows; want 0.2, 4, 12 of 60", rs.Holdout, rs.HoldoutSeed, rs.HoldoutN, rs.TrainCache.N)
	}
	m, err := rundir.ReadMetrics(out)
	if err != nil || m.SelectedOn != head.SelectedOnHoldout || !m.Best.HasHoldout {
		t.Errorf("metrics.json: %+v, %v", m, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, rundir.HistoryFile)); !strings.HasPrefix(string(b), "epoch,accuracy,holdout_accuracy,holdout_loss,loss,val_accuracy,val_loss\n") {
		t.Errorf("history.csv:\n%s", b)
	}

	for _, tc := range []struct {
		desc string
		args []string
		note string // "" for none
	}{
		{"save best", []string{"--save-best"}, "--save-best selects the epoch on --val"},
		{"early stop", []string{"--early-stop", "2"}, "--early-stop selects the epoch on --val"},
		{"both", []string{"--early-stop", "2", "--save-best"}, "--save-best and --early-stop select the epoch on --val"},
		{"last epoch", nil, ""},
		{"sweep", []string{"--sweep", "lr=1e-2,1e-3", "--save-best"}, "the sweep ranks its runs on --val"},
		{"sweep with a holdout", []string{"--sweep", "lr=1e-2,1e-3", "--holdout", "0.2"}, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			stdout, errs := run(append([]string{"--out", filepath.Join(root, strings.ReplaceAll(tc.desc, " ", "-"))}, tc.args...)...)
			if n := strings.Count(errs, "note:"); (tc.note == "" && n != 0) || (tc.note != "" && (n != 1 || !strings.Contains(errs, tc.note))) {
				t.Errorf("%d notes; want %q once:\n%s", n, tc.note, errs)
			}
			if strings.Contains(tc.desc, "holdout") && !strings.Contains(stdout, "best holdout_accuracy") {
				t.Errorf("the sweep's table is not ranked on the holdout:\n%s", stdout)
			}
		})
	}
}

// TestHoldoutBadInput: a --holdout outside (0, 1), not a number, or one
// that leaves a class without a training or a holdout image is a usage
// error naming the flag, and nothing is written.
func TestHoldoutBadInput(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	tiny := filepath.Join(root, "tiny")
	fixtures.FeatureCache(t, tiny, 4, 12, testClasses, "aaaa", 3) // 2, 1 and 1 images
	for _, tc := range []struct {
		desc  string
		args  []string
		train string
		want  string
	}{
		{"zero", []string{"--holdout", "0"}, train, "--holdout must lie strictly between 0 and 1"},
		{"above one", []string{"--holdout", "1.5"}, train, "--holdout must lie strictly between 0 and 1"},
		{"one", []string{"--holdout", "1"}, train, "--holdout must lie strictly between 0 and 1"},
		{"not a number", []string{"--holdout", "abc"}, train, "holdout"},
		{"seed without fraction", []string{"--holdout-seed", "3"}, train, "--holdout-seed needs --holdout"},
		{"a class of one image", []string{"--holdout", "0.5"}, tiny, `--holdout: head: holdout: a class needs 2 training rows`},
		{"sweep, a class of one image", []string{"--holdout", "0.5", "--sweep", "lr=1e-2,1e-3"}, tiny, `"dog" (1 row)`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			out := filepath.Join(root, "out", strings.ReplaceAll(tc.desc, " ", "-"))
			args := append([]string{"train", "--train", tc.train, "--val", val, "--out", out, "--epochs", "1", "--hidden", "4"}, tc.args...)
			code, _, errs := runTlearn(t, args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) > 0 {
				t.Errorf("left %v beside the output", entries)
			}
		})
	}
}

func TestFineTuneHoldoutBadInput(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"0", "1.5"} {
		out := filepath.Join(root, "run")
		code, _, errs := runTlearn(t, "finetune", "--model", root, "--train", root, "--val", root, "--out", out, "--holdout", v)
		if code != 2 || !strings.Contains(errs, "--holdout must lie strictly between 0 and 1") {
			t.Errorf("--holdout %s: exit %d, stderr %q", v, code, errs)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("--holdout %s: %s was written", v, out)
		}
	}
}

// TestTrainAuto: train --auto prints the table of every candidate and why
// the winner won, writes the retrained winner (trained on all of --train,
// no holdout) with the search in settings.json, and leaves nothing else;
// the flags it chooses itself are refused.
func TestTrainAuto(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	out := filepath.Join(root, "auto")
	code, stdout, errs := runTlearn(t, "train", "--auto", "--train", train, "--val", val, "--out", out, "--epochs", "3", "--seed", "1", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1+len(experiment.AutoSpace) || !strings.HasPrefix(lines[0], "rank  candidate") || !strings.Contains(lines[0], "holdout_accuracy") {
		t.Errorf("table of %d lines, want a header and %d candidates:\n%s", len(lines), len(experiment.AutoSpace), stdout)
	}
	if !strings.Contains(errs, "auto: chose "+strings.Fields(lines[1])[1]) || strings.Contains(errs, "note:") {
		t.Errorf("stderr does not say why the table's first won, or notes a selection on --val:\n%s", errs)
	}
	rs, err := rundir.ReadHeadSettings(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Holdout != 0 || rs.HoldoutN != 0 || rs.TrainCache.N != 60 {
		t.Errorf("the written run holds out %g (%d rows): want the winner retrained on all 60", rs.Holdout, rs.HoldoutN)
	}
	if b, _ := os.ReadFile(filepath.Join(out, rundir.SettingsFile)); !strings.Contains(string(b), `"auto": {`) || !strings.Contains(string(b), `"holdout": 0.1`) {
		t.Errorf("settings.json lacks the search (holdout 0.1 by default):\n%s", b)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 2 {
		t.Errorf("beside the run: %v", entries)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--lr", "1e-3"}, "--auto chooses --lr itself"},
		{[]string{"--hidden", "8"}, "--auto chooses --hidden itself"},
		{[]string{"--save-best"}, "--auto chooses --save-best itself"},
		{[]string{"--sweep", "lr=1e-3,1e-4"}, "--auto and --sweep exclude each other"},
		{[]string{"--holdout", "1.5"}, "--holdout must lie strictly between 0 and 1"},
	} {
		o := filepath.Join(root, "bad")
		code, _, errs := runTlearn(t, append([]string{"train", "--auto", "--train", train, "--val", val, "--out", o}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
		if _, err := os.Stat(o); err == nil {
			t.Errorf("%v: wrote %s", tc.args, o)
		}
	}
}
