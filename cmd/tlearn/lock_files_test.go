package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestSecondWriterOfFiles is TestSecondWriterAdvice for the outputs that
// are single files written by the CLI: classify --out, evaluate --out and
// --confusion, and export --out. While another process holds the file's
// lock the command exits 1 at once, naming that process and what to do,
// and neither writes the file nor leaves a temporary of it.
func TestSecondWriterOfFiles(t *testing.T) {
	f := newExportFixture(t, 0)
	clf := exportRun(t, f.run)
	for _, tc := range []struct {
		desc, name string
		args       func(out string) []string
	}{
		{"classify --out", "labels.csv", func(out string) []string {
			return []string{"classify", "--model", clf, "--out", out, "--threads", "1", f.data}
		}},
		{"evaluate --out", "report.json", func(out string) []string {
			return []string{"evaluate", "--run", f.run, "--cache", f.cache, "--out", out, "--threads", "1"}
		}},
		{"evaluate --confusion", "confusion.png", func(out string) []string {
			return []string{"evaluate", "--run", f.run, "--cache", f.cache, "--confusion", out, "--threads", "1"}
		}},
		{"export --out", "classifier.onnx", func(out string) []string {
			return []string{"export", "--run", f.run, "--out", out, "--threads", "1"}
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, tc.name)
			held, err := fsutil.LockOutput(out)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Unlock()
			code, _, errs := runTlearn(t, tc.args(out)...)
			wantStderr(t, tc.desc, code, errs, 1, out+" is being written by another process",
				"pid "+strconv.Itoa(os.Getpid())+": "+strings.Join(os.Args, " "), "wait for that command to finish")
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != filepath.Base(fsutil.LockPath(out)) {
					t.Errorf("the refused %s left %s", tc.desc, e.Name())
				}
			}
		})
	}
}
