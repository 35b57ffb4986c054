package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/models"
)

// compareFixture is a prepared tiny VGG and train/val class folders.
func compareFixture(t *testing.T) (model, train, val string) {
	t.Helper()
	dir := t.TempDir()
	model = filepath.Join(dir, "model")
	if _, err := models.WriteTinyPrepared(model, 3); err != nil {
		t.Fatal(err)
	}
	train, val = filepath.Join(dir, "train"), filepath.Join(dir, "val")
	for i, class := range []string{"ant", "bee", "cow"} {
		fixtures.ClassImages(t, train, class, 12, uint64(10+i))
		fixtures.ClassImages(t, val, class, 4, uint64(20+i))
	}
	return model, train, val
}

func compareArgs(model, train, val, out string) []string {
	return []string{"compare", "--model", model, "--train-data", train, "--val-data", val, "--out", out,
		"--size", "32", "--epochs", "3", "--finetune-epochs", "2", "--batch", "8", "--lr", "1e-3", "--seed", "5", "--threads", "1"}
}

// The report's numbers are the runs' metrics.json, and every file is there.
func TestCompareEndToEnd(t *testing.T) {
	model, train, val := compareFixture(t)
	out := filepath.Join(t.TempDir(), "report")
	code, stdout, stderr := runTlearn(t, compareArgs(model, train, val, out)...)
	if code != 0 {
		t.Fatalf("compare exit %d\nstderr:\n%s", code, stderr)
	}
	for _, f := range []string{"report.md", "curves.png", "stages.json", "head/metrics.json", "head/classifier.onnx",
		"finetune/metrics.json", "finetune/classifier.onnx", "finetune/confusion.png", "cache/train/maps.npy",
		"cache-best/train/maps.npy", "cache-best/val/features.npy", "finetune-best/metrics.json",
		"finetune-best/classifier.onnx"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s missing", f)
		}
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for mode, dir := range map[string]string{"head-only": "head", "block5 fine-tuned": "finetune", "tlearn best": "finetune-best"} {
		m, err := rundir.ReadMetrics(filepath.Join(out, dir))
		if err != nil {
			t.Fatal(err)
		}
		h, err := rundir.ReadHistory(filepath.Join(out, dir, rundir.HistoryFile))
		if err != nil {
			t.Fatal(err)
		}
		// The kept weights' epoch: the last for the tutorial's rows, the
		// holdout's choice for tlearn best; and the highest val accuracy.
		kept, bestVal := h[m.WeightsEpoch-1], h[0]
		for _, e := range h {
			if e.ValAccuracy > bestVal.ValAccuracy {
				bestVal = e
			}
		}
		if dir != "finetune-best" && (kept.Epoch != m.Final.Epoch || kept.ValAccuracy != m.Final.ValAccuracy || bestVal.ValAccuracy != m.Best.ValAccuracy) {
			t.Errorf("%s: kept epoch %+v, want the last %+v", mode, kept, m.Final)
		}
		// | mode | train acc | val acc (final) | val loss | best val acc | best epoch | selected epoch | epochs | time |
		row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(mode) + `[^|]* \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| (\d+) \| (\d+) \| (\d+) \|`).FindStringSubmatch(string(report))
		if row == nil {
			t.Fatalf("no %s row in report.md:\n%s", mode, report)
		}
		for i, want := range []float64{kept.Accuracy, kept.ValAccuracy, kept.ValLoss, bestVal.ValAccuracy,
			float64(bestVal.Epoch), float64(m.WeightsEpoch), float64(m.EpochsRun)} {
			got, _ := strconv.ParseFloat(row[i+1], 64)
			if d := got - want; d > 5e-5 || d < -5e-5 {
				t.Errorf("%s column %d: report %s, metrics.json %v", mode, i+1, row[i+1], want)
			}
		}
		if !strings.Contains(stdout, mode) {
			t.Errorf("the terminal table has no %s row:\n%s", mode, stdout)
		}
	}
	for _, want := range []string{"shuffled", "2 epochs instead of the tutorial's 50", "32×32 instead of 224", "tlearn finetune --model"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md does not mention %q", want)
		}
	}
}

func TestCompareErrors(t *testing.T) {
	model, train, val := compareFixture(t)
	custom := filepath.Join(t.TempDir(), "custom")
	spec, err := models.ReadSpec(model)
	if err != nil {
		t.Fatal(err)
	}
	spec.Maps, spec.Block5, spec.Preset = nil, nil, models.PresetCustom
	if err := os.MkdirAll(custom, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(custom, spec); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"no validation data", []string{"compare", "--model", model, "--train-data", train, "--out", t.TempDir()}, 2, "--val-data"},
		{"both validation flags", []string{"compare", "--model", model, "--train-data", train, "--val-data", val, "--val", "0.2", "--out", t.TempDir()}, 2, "not both"},
		{"not a prepared model", []string{"compare", "--model", train, "--train-data", train, "--val-data", val, "--out", t.TempDir()}, 1, "spec.json"},
		{"non-VGG model", []string{"compare", "--model", custom, "--train-data", train, "--val-data", val, "--out", t.TempDir()}, 2, "not a VGG-shaped model"},
		{"out is a file", []string{"compare", "--model", model, "--train-data", train, "--val-data", val, "--out", file}, 1, "is a file"},
		{"missing images", []string{"compare", "--model", model, "--train-data", filepath.Join(train, "nope"), "--val-data", val, "--out", t.TempDir(), "--size", "32"}, 1, "nope"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, stderr := runTlearn(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr %q should contain %q", code, tc.code, stderr, tc.want)
			}
		})
	}
}

// --no-best runs the tutorial's two rows alone.
func TestCompareNoBest(t *testing.T) {
	model, train, val := compareFixture(t)
	out := filepath.Join(t.TempDir(), "report")
	code, stdout, stderr := runTlearn(t, append(compareArgs(model, train, val, out), "--no-best")...)
	if code != 0 {
		t.Fatalf("compare --no-best exit %d\nstderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout, "tlearn best") || !strings.Contains(stdout, "block5 fine-tuned") {
		t.Errorf("compare --no-best printed:\n%s", stdout)
	}
	if !strings.Contains(stderr, "[5/5] export-finetune") {
		t.Errorf("compare --no-best did not run five stages:\n%s", stderr)
	}
	for _, d := range []string{"cache-best", "head-best", "finetune-best"} {
		if _, err := os.Stat(filepath.Join(out, d)); err == nil {
			t.Errorf("compare --no-best made %s", d)
		}
	}
}

// --best-augment replaces the recipe's augmentation; a bad list is a usage
// error that names the flag, before any work.
func TestCompareBestAugmentBad(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report")
	for _, v := range []string{"nope", "", "crop=2"} {
		code, _, stderr := runTlearn(t, "compare", "--model", filepath.Join(dir, "model"), "--train-data", dir, "--val", "0.2",
			"--out", out, "--best-augment", v)
		if code != 2 || !strings.Contains(stderr, "--best-augment") {
			t.Errorf("--best-augment %q: exit %d, stderr:\n%s", v, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("--best-augment %q: %s was created", v, out)
		}
	}
}

// --int8 on a finished comparison adds the int8 rows beside their float32
// twins, reusing the float32 stages; it refuses a model that is int8
// already, and --calibrate-images without --int8.
func TestCompareInt8(t *testing.T) {
	model, train, val := compareFixture(t)
	out := filepath.Join(t.TempDir(), "report")
	args := append(compareArgs(model, train, val, out), "--no-best")
	if code, _, stderr := runTlearn(t, args...); code != 0 {
		t.Fatalf("compare exit %d\nstderr:\n%s", code, stderr)
	}
	code, stdout, stderr := runTlearn(t, append(args, "--int8", "--calibrate-images", "8")...)
	if code != 0 {
		t.Fatalf("compare --int8 exit %d\nstderr:\n%s", code, stderr)
	}
	for _, want := range []string{"[2/11] quantize", "$ tlearn models quantize --model " + model, "head: reusing the finished stage",
		"finetune: reusing the finished stage", "[7/11] finetune-int8"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("compare --int8 did not log %q:\n%s", want, stderr)
		}
	}
	rows := regexp.MustCompile(`(?m)^(head-only \(VGG16 frozen\)|head-only, int8 features|block5 fine-tuned|block5 fine-tuned, int8 maps)  `).FindAllStringSubmatch(stdout, -1)
	var modes []string
	for _, r := range rows {
		modes = append(modes, r[1])
	}
	if want := []string{"head-only (VGG16 frozen)", "head-only, int8 features", "block5 fine-tuned", "block5 fine-tuned, int8 maps"}; strings.Join(modes, "|") != strings.Join(want, "|") {
		t.Errorf("table rows %q, want %q:\n%s", modes, want, stdout)
	}
	if !regexp.MustCompile(`int8 extraction \(the same images\): .*images/s, [0-9.]+× float32; quantization .* \(8 calibration images\)`).MatchString(stdout) {
		t.Errorf("no int8 extraction line:\n%s", stdout)
	}
	for _, f := range []string{"model-int8/extractor.onnx", "cache-int8/train/maps.npy", "head-int8/classifier.onnx", "finetune-int8/classifier.onnx"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s missing", f)
		}
	}

	model8 := filepath.Join(out, "model-int8")
	for _, tc := range []struct {
		desc string
		args []string
		want string
	}{
		{"an int8 model", []string{"compare", "--model", model8, "--train-data", train, "--val-data", val, "--out", filepath.Join(t.TempDir(), "r"), "--int8"}, "--model takes the float32 folder"},
		{"calibration without --int8", append(compareArgs(model, train, val, filepath.Join(t.TempDir(), "r")), "--calibrate-images", "8"), "--calibrate-images"},
		{"no calibration images", append(compareArgs(model, train, val, filepath.Join(t.TempDir(), "r")), "--int8", "--calibrate-images", "0"), "--calibrate-images must be positive"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, stderr := runTlearn(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2; stderr %q should contain %q", code, stderr, tc.want)
			}
		})
	}
}
