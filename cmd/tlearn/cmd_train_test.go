package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/experiment"
)

func trainApp(stdout, stderr *bytes.Buffer) *cli.App {
	return appWith(stdout, stderr, trainCommand(), evaluateCommand())
}

// cachePair writes DIR/train and DIR/val.
func cachePair(t *testing.T, dir string, classes []string, sha string) (train, val string) {
	train, val = filepath.Join(dir, "train"), filepath.Join(dir, "val")
	fixtures.FeatureCache(t, train, 60, 12, classes, sha, 1)
	fixtures.FeatureCache(t, val, 30, 12, classes, sha, 2)
	return train, val
}

var testClasses = []string{"cat", "dog", "fox"}

func TestTrainCommand(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	out := filepath.Join(root, "run")
	var stdout, stderr bytes.Buffer
	args := []string{"tlearn", "train", "--train", train, "--val", val, "--out", out, "--hidden", "16", "--epochs", "8", "--lr", "0.01", "--seed", "3", "--threads", "1"}
	if err := trainApp(&stdout, &stderr).Run(args); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"training on 60 images (12 features, 3 classes), validating on 30", "epoch 1/8  loss", "epoch 8/8", "val_accuracy 1.0000", "wrote " + out} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	rs, err := rundir.ReadHeadSettings(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Mode != "head" || rs.ModelDir != "/models/aaaa" || rs.ModelSHA256 != "aaaa" || rs.Hidden != 16 || rs.Epochs != 8 || rs.Seed != 3 ||
		rs.Dropout != 0.5 || rs.TrainCache.N != 60 || !filepath.IsAbs(rs.ValCache.Dir) || rs.TrainCache.Fingerprint == "" {
		t.Errorf("settings.json: %+v", rs)
	}
	for _, f := range []string{rundir.WeightsFile, rundir.HistoryFile, rundir.MetricsFile, rundir.CurvesFile, rundir.ConfusionFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	h, err := rundir.ReadHistory(filepath.Join(out, rundir.HistoryFile))
	if err != nil || len(h) != 8 {
		t.Fatalf("history: %v %v", h, err)
	}

	// The same command again refuses to overwrite; --force replaces.
	if err := trainApp(&stdout, &stderr).Run(args); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second run: %v", err)
	}
	stderr.Reset()
	quiet := append(args, "--force", "--quiet", "--hidden", "0")
	if err := trainApp(&stdout, &stderr).Run(quiet); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("--quiet printed:\n%s", stderr.String())
	}
	if rs, _ := rundir.ReadHeadSettings(out); rs == nil || !rs.NoHidden {
		t.Errorf("--hidden 0 did not train a head without hidden layer: %+v", rs)
	}

	// --train naming the folder with train/ and val/.
	out2 := filepath.Join(root, "run2")
	if err := trainApp(&stdout, &stderr).Run([]string{"tlearn", "train", "--train", filepath.Join(root, "cache"), "--out", out2, "--epochs", "1", "--hidden", "8"}); err != nil {
		t.Fatal(err)
	}

	// evaluate on the validation cache.
	stdout.Reset()
	report := filepath.Join(root, "report.json")
	if err := trainApp(&stdout, &stderr).Run([]string{"tlearn", "evaluate", "--run", out2, "--cache", val, "--top-k", "2", "--out", report}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"examples: 30", "accuracy:", "top-2 accuracy:", "precision", "confusion matrix", "0 cat"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("evaluate output lacks %q:\n%s", want, stdout.String())
		}
	}
	var rep head.Report
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil || rep.N != 30 || rep.TopK != 2 {
		t.Errorf("report.json: %+v, %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(root, "report.confusion.png")); err != nil {
		t.Error(err)
	}
}

func TestTrainCommandErrors(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "a"), testClasses, "aaaa")
	_, otherModel := cachePair(t, filepath.Join(root, "b"), testClasses, "bbbb")
	_, otherClasses := cachePair(t, filepath.Join(root, "c"), []string{"cat", "dog"}, "aaaa")
	_, renamed := cachePair(t, filepath.Join(root, "d"), []string{"cat", "dog", "owl"}, "aaaa")
	run := filepath.Join(root, "run")
	var stdout, stderr bytes.Buffer
	if err := trainApp(&stdout, &stderr).Run([]string{"tlearn", "train", "--train", train, "--val", val, "--out", run, "--epochs", "1", "--hidden", "8", "--quiet"}); err != nil {
		t.Fatal(err)
	}
	noWeights := filepath.Join(root, "noweights")
	notes := filepath.Join(root, "notes.txt")
	if err := os.WriteFile(notes, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyRun(t, run, noWeights)
	os.Remove(filepath.Join(noWeights, rundir.WeightsFile))
	corrupt := filepath.Join(root, "corrupt")
	copyRun(t, run, corrupt)
	os.WriteFile(filepath.Join(corrupt, rundir.WeightsFile), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json}      "), 0o644)

	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"val from another backbone", []string{"train", "--train", train, "--val", otherModel, "--out", filepath.Join(root, "x")}, 1, "extracted differently"},
		{"val with other classes", []string{"train", "--train", train, "--val", otherClasses, "--out", filepath.Join(root, "x")}, 1, "has classes [cat dog fox] but"},
		{"val with renamed classes", []string{"train", "--train", train, "--val", renamed, "--out", filepath.Join(root, "x")}, 1, "has classes [cat dog fox] but"},
		{"missing cache", []string{"train", "--train", filepath.Join(root, "nope"), "--val", val, "--out", filepath.Join(root, "x")}, 1, "nope"},
		{"no val", []string{"train", "--train", train, "--out", filepath.Join(root, "x")}, 2, "--val is missing"},
		{"dropout 1", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--dropout", "1"}, 2, "dropout"},
		{"lr 0", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--lr", "0"}, 2, "must be positive"},
		{"epochs 0", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--epochs", "0"}, 2, "--epochs must be positive, got 0"},
		{"bad class weight", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--class-weight", "heavy"}, 2, "balanced"},
		{"bad sweep key", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--sweep", "momentum=1,2"}, 2, "unknown key"},
		{"bad sweep value", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--sweep", "lr=1e-3,fast"}, 2, `bad value "fast"`},
		{"sweep lr 0", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "x"), "--sweep", "lr=0"}, 2, `bad value "0"`},
		{"out under a file", []string{"train", "--train", train, "--val", val, "--out", filepath.Join(notes, "run")}, 1, "cannot create " + filepath.Join(notes, "run") + ": " + notes + " is a regular file, not a folder (choose another --out)"},
		{"evaluate other backbone", []string{"evaluate", "--run", run, "--cache", otherModel}, 1, "another backbone"},
		{"evaluate other class count", []string{"evaluate", "--run", run, "--cache", otherClasses}, 1, "2 classes [cat dog], the run has 3"},
		{"evaluate renamed classes", []string{"evaluate", "--run", run, "--cache", renamed}, 1, "same names in the same order"},
		{"evaluate missing weights", []string{"evaluate", "--run", noWeights, "--cache", val}, 1, filepath.Join(noWeights, rundir.WeightsFile)},
		{"evaluate corrupt weights", []string{"evaluate", "--run", corrupt, "--cache", val}, 1, filepath.Join(corrupt, rundir.WeightsFile) + " has sha256"},
		{"evaluate no run", []string{"evaluate", "--run", filepath.Join(root, "a"), "--cache", val}, 1, "not a run directory"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runApp(context.Background(), trainApp(&stdout, &stderr), append([]string{"tlearn"}, tc.args...))
			msg := stderr.String()
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, msg, tc.code, tc.want)
			}
		})
	}
}

func copyRun(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o755)
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o644)
	}
}

func TestTrainSweep(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	out := filepath.Join(root, "sweep")
	args := []string{"tlearn", "train", "--train", train, "--val", val, "--out", out, "--hidden", "8", "--epochs", "2",
		"--sweep", "lr=1e-2,1e-4", "--sweep", "dropout=0, 0.5"}
	var stdout, stderr bytes.Buffer
	if err := trainApp(&stdout, &stderr).Run(args); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	names := []string{"lr-1e-2_dropout-0", "lr-1e-2_dropout-0.5", "lr-1e-4_dropout-0", "lr-1e-4_dropout-0.5"}
	for _, n := range names {
		rs, err := rundir.ReadHeadSettings(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(n, "dropout-0.5") != (rs.Dropout == 0.5) || strings.Contains(n, "lr-1e-2") != (rs.LR == 1e-2) {
			t.Errorf("%s has settings %+v", n, rs.Settings)
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "rank") || !strings.HasPrefix(lines[1], "1 ") {
		t.Fatalf("ranked table:\n%s", stdout.String())
	}
	prev := 2.0
	for _, l := range lines[1:] {
		var rank int
		var name string
		var acc float64
		if _, err := fmt.Sscan(l, &rank, &name, &acc); err != nil {
			t.Fatalf("table line %q: %v", l, err)
		}
		if acc > prev {
			t.Errorf("table not ranked by best val_accuracy:\n%s", stdout.String())
		}
		prev = acc
	}
	if b, err := os.ReadFile(filepath.Join(out, experiment.SweepFile)); err != nil || strings.Count(string(b), "\n") != 5 {
		t.Errorf("sweep.csv: %q %v", b, err)
	}

	// Running the sweep again reuses every finished run.
	stdout.Reset()
	stderr.Reset()
	if err := trainApp(&stdout, &stderr).Run(args); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(stderr.String(), "reusing the finished run"); got != 4 {
		t.Errorf("%d runs reused, want 4:\n%s", got, stderr.String())
	}
	// Other base settings conflict with the existing runs.
	if err := trainApp(&stdout, &stderr).Run(append(args, "--seed", "9")); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("conflicting sweep: %v", err)
	}
}

func TestTrainInterrupted(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	out := filepath.Join(root, "run")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	err := trainApp(&stdout, &stderr).RunContext(ctx, []string{"tlearn", "train", "--train", train, "--val", val, "--out", out, "--epochs", "3"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "cache" {
			t.Errorf("an interrupted run left %s", e.Name())
		}
	}
}
