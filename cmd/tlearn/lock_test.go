package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/models"
)

// TestSecondWriterAdvice holds the lock of each kind of output, as the
// same command running in another process would, and checks that a second
// writer into it exits 1 at once, naming the holder's pid and command and
// what to do, and leaves the output as it was.
func TestSecondWriterAdvice(t *testing.T) {
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), testClasses, "aaaa")
	tiny := filepath.Join(root, "tiny.onnx")
	if err := models.Save(tiny, models.SynthVGG16(models.SynthSettings{Seed: 1, Width: 1.0 / 16})); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader([]byte("not reached")))
	}))
	defer ts.Close()
	fetchDir := filepath.Join(root, "models")
	if err := os.Mkdir(fetchDir, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		desc string
		out  string // the output whose lock is held
		args []string
		// before is a line of stderr that the refused command must not
		// print: it would mean work before the lock.
		before string
	}{
		{desc: "train", out: filepath.Join(root, "run"), before: "epoch 1/",
			args: []string{"train", "--train", train, "--val", val, "--out", filepath.Join(root, "run"), "--epochs", "3", "--hidden", "8", "--threads", "1"}},
		{desc: "models prepare", out: filepath.Join(root, "model"), before: "prepared",
			args: []string{"models", "prepare", "--onnx", tiny, "--out", filepath.Join(root, "model"), "--device", "cpu", "--threads", "1"}},
		{desc: "models synth", out: filepath.Join(root, "synth.onnx"), before: "wrote",
			args: []string{"models", "synth", "vgg16", "--seed", "1", "--tiny", "--out", filepath.Join(root, "synth.onnx")}},
		{desc: "models fetch", out: filepath.Join(fetchDir, "vgg16-12"), before: "downloading",
			args: []string{"models", "fetch", "vgg16", "--url", ts.URL + "/vgg16-12.tar.gz", "--sha256", strings.Repeat("0", 64),
				"--dir", fetchDir, "--no-verify-run"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			held, err := fsutil.LockOutput(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Unlock()
			code, _, errs := runTlearn(t, tc.args...)
			for _, want := range []string{tc.out + " is being written by another process", "pid " + strconv.Itoa(os.Getpid()) + ": " + strings.Join(os.Args, " "), "wait for that command to finish"} {
				if !strings.Contains(errs, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errs)
				}
			}
			if code != 1 || strings.Contains(errs, tc.before) {
				t.Errorf("exit %d, want 1 before it prints %q:\n%s", code, tc.before, errs)
			}
			if _, err := os.Stat(tc.out); !os.IsNotExist(err) {
				t.Errorf("the refused command made %s (%v)", tc.out, err)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the refused fetch made %d requests", n)
	}
}

// TestStaleTemporariesRemoved plants what a writer killed mid-write leaves
// beside and inside the output of models prepare, synth and fetch, and
// checks that the next run of the command removes it: nothing hidden stays.
func TestStaleTemporariesRemoved(t *testing.T) {
	root := t.TempDir()
	tiny := filepath.Join(root, "tiny.onnx")
	if err := models.Save(tiny, models.SynthVGG16(models.SynthSettings{Seed: 1, Width: 1.0 / 16})); err != nil {
		t.Fatal(err)
	}
	archive, sum := fetchArchive(t, 1<<10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(archive))
	}))
	defer ts.Close()
	for _, tc := range []struct {
		desc  string
		args  []string
		stale []string // relative to the case's folder
	}{
		{desc: "models prepare", args: []string{"models", "prepare", "--onnx", tiny, "--out", "{out}", "--device", "cpu", "--threads", "1"},
			stale: []string{".out.partial-1", "out/.extractor.onnx.tmp-2", "out/.spec.json.tmp-3"}},
		{desc: "models synth", args: []string{"models", "synth", "vgg16", "--seed", "1", "--tiny", "--out", "{out}"},
			stale: []string{".out.tmp-1"}},
		{desc: "models fetch", args: []string{"models", "fetch", "vgg16", "--url", ts.URL + "/vgg16-12.tar.gz", "--sha256", sum,
			"--dir", "{out}", "--no-verify-run"},
			stale: []string{"out/.vgg16-12.partial-1/vgg16/vgg16.onnx", "out/.vgg16-12.tar.gz.tmp-2"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range tc.stale {
				p := filepath.Join(dir, s)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("left by a killed run"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if code, _, errs := runTlearn(t, withOut(tc.args, filepath.Join(dir, "out"))...); code != 0 {
				t.Fatalf("exit %d\n%s", code, errs)
			}
			for rel := range outputTree(t, dir) {
				for _, part := range strings.Split(rel, string(filepath.Separator)) {
					// The one hidden file that belongs: fetch's record of
					// the archive it unpacked.
					if strings.HasPrefix(part, ".") && part != ".tlearn-unpacked.json" {
						t.Errorf("left behind: %s", rel)
						break
					}
				}
			}
		})
	}
}

// fetchArchive is a model archive as the zoo's are laid out
// (vgg16/vgg16.onnx), the model n seeded random bytes (not a model: the
// fetches that use it skip the test run), and its sha256.
func fetchArchive(t *testing.T, n int) (archive []byte, sha string) {
	t.Helper()
	body := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "vgg16/vgg16.onnx", Mode: 0o644, Size: int64(n)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}
