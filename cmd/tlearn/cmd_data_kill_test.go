package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
)

// writeDataSources writes small MNIST (idx) and CIFAR-10 (binary version)
// sources under dir and returns their folders.
func writeDataSources(t *testing.T, dir string) (mnistDir, cifarDir string) {
	t.Helper()
	mnistDir = filepath.Join(dir, "idx")
	os.Mkdir(mnistDir, 0o755)
	const n = 40
	labels := make([]byte, n)
	pix := make([]byte, n*30)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	for _, p := range []string{"train", "t10k"} {
		writeIdx(t, filepath.Join(mnistDir, p+"-images-idx3-ubyte"), []int{n, 6, 5}, pix)
		writeIdx(t, filepath.Join(mnistDir, p+"-labels-idx1-ubyte"), []int{n}, labels)
	}
	cifarDir = filepath.Join(dir, "cifar-10-batches-bin")
	os.Mkdir(cifarDir, 0o755)
	os.WriteFile(filepath.Join(cifarDir, "batches.meta.txt"), []byte("cat\ndog\n\n"), 0o644)
	for _, b := range []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"} {
		var recs []byte
		for i := range 4 {
			recs = append(recs, byte(i%2))
			recs = append(recs, bytes.Repeat([]byte{byte(i)}, 3072)...)
		}
		os.WriteFile(filepath.Join(cifarDir, b+".bin"), recs, 0o644)
	}
	return mnistDir, cifarDir
}

// dataTree maps each file under dir, but the marker, to its content.
func dataTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == dataset.MarkerFile {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sameTree fails unless got holds the same files, with the same bytes, as
// want (markers aside).
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := dataTree(t, want), dataTree(t, got)
	for rel, b := range w {
		if gb, ok := g[rel]; !ok {
			t.Errorf("%s lacks %s", got, rel)
		} else if gb != b {
			t.Errorf("%s differs from %s", filepath.Join(got, rel), filepath.Join(want, rel))
		}
	}
	for rel := range g {
		if _, ok := w[rel]; !ok {
			t.Errorf("%s has %s, which an uninterrupted run does not write", got, rel)
		}
	}
}

// dataKillCases are the data commands that TestDataRerunAfterKill kills;
// {out} stands for the output folder.
func dataKillCases(dir string) []struct {
	desc string
	args []string
} {
	mnistDir := filepath.Join(dir, "idx")
	return []struct {
		desc string
		args []string
	}{
		{"mnist", []string{"data", "mnist", "--src", mnistDir, "--out", "{out}", "--train-per-class", "3"}},
		{"cifar10", []string{"data", "cifar10", "--src", dir, "--out", "{out}", "--test-per-class", "1"}},
		{"split", []string{"data", "split", "--src", filepath.Join(dir, "ref-mnist", "train"), "--out", "{out}", "--val", "0.25", "--seed", "3"}},
	}
}

func withOut(args []string, out string) []string {
	r := append([]string(nil), args...)
	for i, a := range r {
		if a == "{out}" {
			r[i] = out
		}
	}
	return r
}

// TestDataRerunAfterKill kills each data command with SIGKILL in a child
// process once it has begun writing, then checks that the output says it is
// incomplete, that extract and data split refuse it naming the command
// that finishes it, and that the same command, without --force, finishes
// it to the content of an uninterrupted run.
func TestDataRerunAfterKill(t *testing.T) {
	ortlibtest.Init(t)
	dir := t.TempDir()
	writeDataSources(t, dir)
	model := filepath.Join(dir, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	cases := dataKillCases(dir)
	// The uninterrupted runs; split's source is the mnist one.
	for _, tc := range cases {
		if code, _, errs := runTlearn(t, withOut(tc.args, filepath.Join(dir, "ref-"+tc.desc))...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.desc, code, errs)
		}
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			out := filepath.Join(dir, "killed-"+tc.desc)
			args := withOut(tc.args, out)
			cmd := exec.Command(os.Args[0], "-test.run=^TestDataKillChild$")
			cmd.Env = append(os.Environ(), "TLEARN_DATA_KILL_ARGS="+strings.Join(args, "\n"))
			b, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, b)
			}
			m, err := dataset.ReadMarker(out)
			if err != nil || m.State != dataset.StateIncomplete {
				t.Fatalf("marker after the kill: %+v, %v", m, err)
			}
			part := filepath.Join(out, "train")
			code, _, errs := runTlearn(t, "extract", "--model", model, "--data", part, "--cache", filepath.Join(dir, "cache-"+tc.desc), "--size", "32", "--device", "cpu", "--threads", "1")
			wantCmd := "tlearn " + strings.Join(args, " ")
			if code == 0 || !strings.Contains(errs, out+" is incomplete") || !strings.Contains(errs, wantCmd) {
				t.Errorf("extract of the killed dataset: exit %d, want a refusal naming %s and `%s`:\n%s", code, out, wantCmd, errs)
			}
			if _, err := os.Stat(filepath.Join(dir, "cache-"+tc.desc)); err == nil {
				t.Errorf("extract of the killed dataset wrote a cache")
			}
			code, _, errs = runTlearn(t, "data", "split", "--src", part, "--out", filepath.Join(dir, "split-of-"+tc.desc))
			if code == 0 || !strings.Contains(errs, out+" is incomplete") {
				t.Errorf("split of the killed dataset: exit %d\n%s", code, errs)
			}

			code, _, errs = runTlearn(t, args...)
			if code != 0 || !strings.Contains(errs, out+" was incomplete") {
				t.Fatalf("rerun: exit %d, want a restart message:\n%s", code, errs)
			}
			if m, err := dataset.ReadMarker(out); err != nil || m.State != dataset.StateComplete {
				t.Errorf("marker after the rerun: %+v, %v", m, err)
			}
			sameTree(t, filepath.Join(dir, "ref-"+tc.desc), out)

			// Complete now: a rerun without --force refuses and says so.
			code, _, errs = runTlearn(t, args...)
			if code == 0 || !strings.Contains(errs, "is a complete dataset") || !strings.Contains(errs, "--force") {
				t.Errorf("rerun of the complete dataset: exit %d\n%s", code, errs)
			}
		})
	}
}

// killWriter kills this process with SIGKILL when the phase line of the
// images ("... images to go") is written: after the output is prepared
// and while the images are being written.
type killWriter struct{ bytes.Buffer }

func (w *killWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("images to go")) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return w.Buffer.Write(p)
}

// TestDataKillChild is the child of TestDataRerunAfterKill; it does nothing
// unless started by it.
func TestDataKillChild(t *testing.T) {
	args := os.Getenv("TLEARN_DATA_KILL_ARGS")
	if args == "" {
		t.Skip("helper process of TestDataRerunAfterKill")
	}
	var stdout bytes.Buffer
	w := &killWriter{}
	code := run(append([]string{"tlearn"}, strings.Split(args, "\n")...), &stdout, w)
	t.Fatalf("not killed; exit %d\n%s", code, w.String())
}

// cancelWriter cancels a context when the images' phase line is written,
// as Ctrl-C would.
type cancelWriter struct {
	bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("images to go")) {
		w.cancel()
	}
	return w.Buffer.Write(p)
}

// TestDataInterruptedMessage checks what Ctrl-C during a data command
// says: the output is marked incomplete and the same command restarts it,
// which it then does.
func TestDataInterruptedMessage(t *testing.T) {
	dir := t.TempDir()
	writeDataSources(t, dir)
	for _, tc := range dataKillCases(dir) {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.desc == "split" {
				if code, _, errs := runTlearn(t, withOut(dataKillCases(dir)[0].args, filepath.Join(dir, "ref-mnist"))...); code != 0 {
					t.Fatalf("exit %d\n%s", code, errs)
				}
			}
			out := filepath.Join(dir, "cancelled-"+tc.desc)
			args := withOut(tc.args, out)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout bytes.Buffer
			w := &cancelWriter{cancel: cancel}
			code := runApp(ctx, newApp(&stdout, w), append([]string{"tlearn"}, args...))
			want := "tlearn: interrupted; " + out + " is marked incomplete; the same command restarts it from the beginning"
			if code != 130 || !strings.Contains(w.String(), want) {
				t.Fatalf("exit %d, want 130 and %q:\n%s", code, want, w.String())
			}
			if code, _, errs := runTlearn(t, args...); code != 0 || !strings.Contains(errs, "restarted") {
				t.Errorf("rerun: exit %d\n%s", code, errs)
			}
		})
	}
}
