package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
)

func extractApp(stdout, stderr *bytes.Buffer) *cli.App {
	return appWith(stdout, stderr, extractCommand(), cacheCommand())
}

// writePNGs writes n small seeded PNGs into dir/class.
func writePNGs(t *testing.T, dir, class string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 20+i, 24))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*7 + i*31 + len(class)*13)
		}
		for y := range 24 {
			for x := range 20 + i {
				c := img.RGBAAt(x, y)
				c.A = 255
				img.SetRGBA(x, y, color.RGBA{c.R, c.G, c.B, 255})
			}
		}
		var b bytes.Buffer
		png.Encode(&b, img)
		if err := os.WriteFile(filepath.Join(dir, class, string(rune('a'+i))+".png"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExtractCommand(t *testing.T) {
	ortlibtest.Init(t)
	root := t.TempDir()
	model := filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	writePNGs(t, data, "cat", 6)
	writePNGs(t, data, "dog", 5)
	os.WriteFile(filepath.Join(data, "cat", "README.txt"), []byte("not an image"), 0o644)
	cacheDir := filepath.Join(root, "cache")
	common := []string{"--model", model, "--size", "32", "--batch", "2", "--device", "cpu", "--threads", "1"}

	var out, errs bytes.Buffer
	args := append([]string{"tlearn", "extract", "--data", data, "--cache", cacheDir, "--val", "0.4", "--seed", "2", "--maps"}, common...)
	if err := extractApp(&out, &errs).Run(args); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, want := range []string{"cat/README.txt: not an image", "images to go", filepath.Join(cacheDir, "train") + ": 7 images (7 computed", filepath.Join(cacheDir, "val") + ": 4 images", "maps 32×2×2"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs.String())
		}
	}
	errs.Reset()
	if err := extractApp(&out, &errs).Run(args); err != nil || !strings.Contains(errs.String(), "up to date") {
		t.Errorf("second run: %v\n%s", err, errs.String())
	}
	for _, part := range []string{"train", "val"} {
		c, err := cache.Open(filepath.Join(cacheDir, part))
		if err != nil {
			t.Fatal(err)
		}
		if c.Manifest.Split == nil || c.Manifest.Split.Part != part || c.Maps == nil {
			t.Errorf("%s: split %+v, maps %v", part, c.Manifest.Split, c.Maps != nil)
		}
		if c.Manifest.Interpolation != string(dataset.DefaultInterpolation) {
			t.Errorf("%s: interpolation %q without --interpolation, want the default %q", part, c.Manifest.Interpolation, dataset.DefaultInterpolation)
		}
		c.Close()
	}

	out.Reset()
	if err := extractApp(&out, &errs).Run([]string{"tlearn", "cache", "info", "--verify", cacheDir}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cache/train\n", "cache/val\n", "complete:      yes", "images:        7 in 2 classes: cat 4, dog 3", "maps:          32×2×2 float16", "features:      32 float32", "chunks verified", "split:         val part of --val 0.4 --seed 2", "fingerprint:", `"channel_order":"RGB"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cache info lacks %q:\n%s", want, out.String())
		}
	}

	// Exit codes and messages through run(), as a user sees them.
	oneClass := filepath.Join(root, "one")
	writePNGs(t, oneClass, "cat", 2)
	emptyClass := filepath.Join(root, "emptyclass")
	writePNGs(t, emptyClass, "cat", 2)
	os.MkdirAll(filepath.Join(emptyClass, "dog"), 0o755)
	bad := filepath.Join(root, "bad")
	writePNGs(t, bad, "cat", 2)
	writePNGs(t, bad, "dog", 2)
	os.WriteFile(filepath.Join(bad, "dog", "zero.png"), nil, 0o644)
	brokenCache := filepath.Join(root, "broken")
	os.MkdirAll(brokenCache, 0o755)
	os.WriteFile(filepath.Join(brokenCache, cache.ManifestFile), []byte("{"), 0o644)
	fileCache := filepath.Join(root, "file")
	os.WriteFile(fileCache, []byte("x"), 0o644)
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"missing data folder", []string{"--data", filepath.Join(root, "nope"), "--cache", filepath.Join(root, "c1")}, 1, filepath.Join(root, "nope")},
		{"one class", []string{"--data", oneClass, "--cache", filepath.Join(root, "c2")}, 1, "only one class"},
		{"empty class folder", []string{"--data", emptyClass, "--cache", filepath.Join(root, "c3")}, 1, filepath.Join(emptyClass, "dog")},
		{"zero-byte image", []string{"--data", bad, "--cache", filepath.Join(root, "c4")}, 1, filepath.Join(bad, "dog", "zero.png")},
		{"zero-byte image advice", []string{"--data", bad, "--cache", filepath.Join(root, "c4")}, 1, "fix or remove them (--skip-bad leaves such images out)"},
		{"zero-byte image skipped", []string{"--data", bad, "--cache", filepath.Join(root, "c5"), "--skip-bad"}, 0, "dog/zero.png: dataset: empty file"},
		{"cache path is a file", []string{"--data", data, "--cache", fileCache}, 1, fileCache + " is a file"},
		{"single cache where a split is", []string{"--data", data, "--cache", cacheDir}, 1, "train/val pair"},
		{"other settings", []string{"--data", data, "--cache", cacheDir, "--val", "0.4", "--seed", "2", "--interpolation", "nearest"}, 1, "interpolation " + string(dataset.DefaultInterpolation) + " (now nearest)"},
		{"other settings advice", []string{"--data", data, "--cache", cacheDir, "--val", "0.4", "--seed", "2", "--interpolation", "nearest"}, 1, "; --force rebuilds it, or choose another --cache folder"},
		{"unreadable cache", []string{"--data", data, "--cache", brokenCache}, 1, "extractor: the existing cache cannot be read: cache: " + filepath.Join(brokenCache, cache.ManifestFile)},
		{"unreadable cache advice", []string{"--data", data, "--cache", brokenCache}, 1, "; --force rebuilds it, or choose another --cache folder"},
		{"bad fraction", []string{"--data", data, "--cache", cacheDir, "--val", "1.5"}, 2, "--val"},
		{"bad interpolation", []string{"--data", data, "--cache", cacheDir, "--interpolation", "cubic"}, 2, "cubic"},
		{"bad size", []string{"--data", data, "--cache", filepath.Join(root, "c6"), "--size", "40"}, 2, "multiple of 32"},
		{"views without augment", []string{"--data", data, "--cache", filepath.Join(root, "c8"), "--views", "3"}, 2, "--views 3 needs --augment (e.g. --augment flip,crop)"},
		{"too many views", []string{"--data", data, "--cache", filepath.Join(root, "c8"), "--views", "65", "--augment", "flip"}, 2, "--views must be between 1 and 64, got 65"},
		{"no views", []string{"--data", data, "--cache", filepath.Join(root, "c8"), "--views", "0", "--augment", "flip"}, 2, "--views must be between 1 and 64, got 0"},
		{"unknown augmentation", []string{"--data", data, "--cache", filepath.Join(root, "c8"), "--views", "2", "--augment", "flip,rotate"}, 2, `--augment: dataset: invalid augmentation: unknown augmentation "rotate" in "flip,rotate", want a list of flip, crop, jitter`},
		{"augment without views", []string{"--data", data, "--cache", filepath.Join(root, "c8"), "--augment", "flip"}, 2, "--augment flip needs --views 2 or more"},
		{"other views", []string{"--data", data, "--cache", cacheDir, "--val", "0.4", "--seed", "2", "--maps", "--views", "2", "--augment", "flip"}, 1, "1 view (plain) (now 2 views (flip, seed 1)); give the --views, --augment and --augment-seed it was made with"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, got := runTlearn(t, append(append([]string{"extract"}, common[:len(common)-4]...), tc.args...)...)
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, tc.code, tc.want, got)
			}
		})
	}

	// Views: the disk cost before the work, progress over images × views,
	// arrays of [N,K,...], and cache info says so.
	viewsDir := filepath.Join(root, "views")
	errs.Reset()
	args = append([]string{"tlearn", "extract", "--data", data, "--cache", viewsDir, "--maps", "--views", "3", "--augment", "flip,crop", "--augment-seed", "4"}, common...)
	if err := extractApp(&out, &errs).Run(args); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, want := range []string{viewsDir + ": 11 images × 3 views (flip,crop=0.5, seed 4): features 4.2 kB, maps 8.4 kB on disk", "(33 views computed", "3 views (flip,crop=0.5, seed 4)"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs.String())
		}
	}
	if strings.Index(errs.String(), "on disk") > strings.Index(errs.String(), "views computed") {
		t.Errorf("the disk cost comes after the work:\n%s", errs.String())
	}
	out.Reset()
	if err := extractApp(&out, &errs).Run([]string{"tlearn", "cache", "info", viewsDir}); err != nil {
		t.Fatal(err)
	}
	if want := "views:         3 per image: view 0 plain, 1..2 augmented with --augment flip,crop=0.5 --augment-seed 4 (arrays [N,3,...])"; !strings.Contains(out.String(), want) {
		t.Errorf("cache info lacks %q:\n%s", want, out.String())
	}

	// A size that is not a multiple of 32 is bad usage: exit status 2 and
	// one line, before the dataset is listed (data has a README.txt that
	// the listing would report) or any cache is made.
	c7 := filepath.Join(root, "c7")
	code, _, got := runTlearn(t, "extract", "--model", model, "--data", data, "--cache", c7, "--size", "33")
	want := "tlearn: --size 33: extractor: " + model + ": input size 33 is not a multiple of 32 (the model halves it 5 times); try 32\n"
	if code != 2 || got != want {
		t.Errorf("--size 33: exit %d, stderr %q; want 2 and %q", code, got, want)
	}
	if _, err := os.Stat(c7); !os.IsNotExist(err) {
		t.Errorf("--size 33 made %s: %v", c7, err)
	}
}

// TestExtractRefusesFIFO checks that extract passes over a named pipe among
// the images, saying what it is, and refuses a prepared model whose
// extractor.onnx is one, instead of blocking on either.
func TestExtractRefusesFIFO(t *testing.T) {
	ortlibtest.Init(t)
	root := t.TempDir()
	model := filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	fifoModel := filepath.Join(root, "fifomodel")
	if _, err := models.WriteTinyPrepared(fifoModel, 1); err != nil {
		t.Fatal(err)
	}
	onnx := filepath.Join(fifoModel, models.ExtractorFile)
	os.Remove(onnx)
	fixtures.FIFO(t, onnx)
	data := filepath.Join(root, "data")
	writePNGs(t, data, "cat", 4)
	writePNGs(t, data, "dog", 4)
	img := fixtures.FIFO(t, filepath.Join(data, "cat", "z.png"))
	unblock := func() { fixtures.UnblockFIFO(img); fixtures.UnblockFIFO(onnx) }
	for _, tc := range []struct {
		desc, model string
		ok          bool
		want        string
	}{
		{"image", model, true, "cat/z.png: a named pipe (FIFO), not a regular file"},
		{"model", fifoModel, false, onnx + " is a named pipe (FIFO)"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var out, errs bytes.Buffer
			var err error
			fixtures.Within(t, 60*time.Second, unblock, func() {
				err = extractApp(&out, &errs).Run([]string{"tlearn", "extract", "--data", data, "--cache", filepath.Join(t.TempDir(), "cache"),
					"--val", "0.5", "--model", tc.model, "--size", "32", "--device", "cpu", "--threads", "1"})
			})
			msg := errs.String()
			if err != nil {
				msg += err.Error()
			}
			if (err == nil) != tc.ok || !strings.Contains(msg, tc.want) {
				t.Fatalf("err %v, want ok=%v and %q in:\n%s", err, tc.ok, tc.want, msg)
			}
		})
	}
}
