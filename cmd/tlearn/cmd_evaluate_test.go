package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
)

// TestEvaluateFineTunedRun: evaluate runs a fine-tuned run's block5 and
// head on a maps cache and reports what the run measured on the same
// validation cache; a cache without maps is refused.
func TestEvaluateFineTunedRun(t *testing.T) {
	ortlibtest.Init(t)
	root := t.TempDir()
	model := filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	writePNGs(t, data, "cat", 4)
	writePNGs(t, data, "dog", 4)
	app := func(stdout, stderr *bytes.Buffer) *cli.App {
		return appWith(stdout, stderr, extractCommand(), finetuneCommand(), evaluateCommand())
	}
	var out, errs bytes.Buffer
	cpu := []string{"--device", "cpu", "--threads", "1"}
	mustRun := func(args ...string) {
		t.Helper()
		out.Reset()
		errs.Reset()
		if err := app(&out, &errs).Run(append(append([]string{"tlearn"}, args...), cpu...)); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, errs.String())
		}
	}
	other := filepath.Join(root, "other")
	if _, err := models.WriteTinyPrepared(other, 2); err != nil {
		t.Fatal(err)
	}
	withMaps, noMaps, otherMaps := filepath.Join(root, "maps"), filepath.Join(root, "nomaps"), filepath.Join(root, "othermaps")
	for _, x := range []struct {
		model, dir string
		maps       bool
	}{{model, withMaps, true}, {model, noMaps, false}, {other, otherMaps, true}} {
		args := []string{"extract", "--model", x.model, "--data", data, "--cache", x.dir, "--val", "0.5", "--size", "32"}
		if x.maps {
			args = append(args, "--maps")
		}
		mustRun(args...)
	}
	runDir := filepath.Join(root, "run-ft")
	val := filepath.Join(withMaps, "val")
	mustRun("finetune", "--model", model, "--train", filepath.Join(withMaps, "train"), "--val", val, "--out", runDir,
		"--hidden", "4", "--epochs", "1", "--batch", "4", "--lr", "1e-3")

	report := filepath.Join(root, "report.json")
	mustRun("evaluate", "--run", runDir, "--cache", val, "--out", report)
	var m rundir.Metrics
	b, err := os.ReadFile(filepath.Join(runDir, rundir.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Validation == nil {
		t.Fatalf("metrics.json: %v\n%s", err, b)
	}
	if want := fmt.Sprintf("accuracy: %.4f\n", m.Validation.Accuracy); !strings.Contains(out.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, out.String())
	}
	var rep head.Report
	if b, err = os.ReadFile(report); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || fmt.Sprint(rep.Confusion) != fmt.Sprint(m.Validation.Confusion) {
		t.Errorf("report confusion %v (%v), the run's validation %v", rep.Confusion, err, m.Validation.Confusion)
	}

	for _, tc := range []struct {
		desc, cache, want string
	}{
		{"cache without maps", filepath.Join(noMaps, "val"), filepath.Join(noMaps, "val") + " has no block4_pool maps: extract it with --maps"},
		{"maps of another model", filepath.Join(otherMaps, "val"), "made with another backbone"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := runApp(context.Background(), app(&out, &errs), []string{"tlearn", "evaluate", "--run", runDir, "--cache", tc.cache, "--quiet"})
			msg := errs.String()
			if code != 1 || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, msg, tc.want)
			}
		})
	}
}
