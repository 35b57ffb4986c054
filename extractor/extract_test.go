package extractor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/extractor/internal/extractortest"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
)

// TestFeaturesMatchDirectRun checks the cache against an independent ORT
// session over the same extractor.onnx, fed one image at a time with the
// same preprocessed tensor: the batching, padding, ordering and float16
// storage of Extract must not change the values.
func TestFeaturesMatchDirectRun(t *testing.T) {
	t.Parallel()
	modelDir := extractortest.TinyModel(t)
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	data := extractortest.MakeDataset(t, []string{"ant", "bee", "cow"}, 5)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	e := openExtractor(t, Options{Batch: 4, Maps: true})
	res, err := extract(t, e, data, cacheDir, Settings{Interpolation: dataset.Bilinear})
	if err != nil {
		t.Fatal(err)
	}
	if res.N != 15 || res.Computed != 15 || res.UpToDate {
		t.Fatalf("result %+v", res)
	}
	c, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	side := int64(extractortest.Size / spec.Maps.Stride)
	in, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, extractortest.Size, extractortest.Size))
	feat, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, int64(spec.Features.Dim)))
	maps, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, int64(spec.Maps.Channels), side, side))
	defer in.Destroy()
	defer feat.Destroy()
	defer maps.Destroy()
	sess, err := ort.NewAdvancedSession(filepath.Join(modelDir, models.ExtractorFile), []string{spec.Input},
		[]string{models.FeaturesOutput, models.MapsOutput}, []ort.Value{in}, []ort.Value{feat, maps}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()

	src := openSource(t, data)
	if got := c.Manifest.Classes; fmt.Sprint(got) != "[ant bee cow]" {
		t.Errorf("classes %v", got)
	}
	mapVals := make([]float32, c.MapLen())
	for i, it := range src.Items {
		if c.Manifest.Items[i].Path != it.Path || int(c.Labels[i]) != it.Label {
			t.Fatalf("row %d is %s label %d, want %s label %d", i, c.Manifest.Items[i].Path, c.Labels[i], it.Path, it.Label)
		}
		img, err := src.Decode(i)
		if err != nil {
			t.Fatal(err)
		}
		dataset.Preprocess(in.GetData(), 0, dataset.Resize(img, extractortest.Size, dataset.Bilinear), spec.Preprocessing)
		if err := sess.Run(); err != nil {
			t.Fatal(err)
		}
		for j, want := range feat.GetData() {
			if got := c.Feature(i)[j]; !tol.Close(float64(got), float64(want), 1e-5, 1e-5) {
				t.Fatalf("%s: feature %d = %g, direct run %g", it.Path, j, got, want)
			}
		}
		cache.F16ToF32(mapVals, c.Map(i))
		for j, want := range maps.GetData() {
			if !tol.Close(float64(mapVals[j]), float64(want), 1e-3, 1e-3) { // float16 keeps 11 significant bits
				t.Fatalf("%s: map value %d = %g, direct run %g", it.Path, j, mapVals[j], want)
			}
		}
	}
}

// TestResumeAfterCancel cancels an extraction after two chunks, resumes it,
// and compares the arrays with an uninterrupted run's, byte for byte.
func TestResumeAfterCancel(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 20) // 40 images, batch 2: chunks of 8
	e := openExtractor(t, Options{Batch: 2, Maps: true})
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := extract(t, e, data, ref, Settings{}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "cache")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{cancelAt: 17, onCancel: cancel}
	e.prog = rec
	_, err := e.Extract(ctx, openSource(t, data), nil, dir, Settings{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Extract returned %v", err)
	}
	if _, err := cache.Open(dir); !errors.Is(err, cache.ErrIncomplete) {
		t.Fatalf("Open of the interrupted cache: %v", err)
	}
	m, err := cache.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := m.DoneRows()
	if done < 16 || done >= 40 {
		t.Fatalf("%d rows done after cancelling at 17", done)
	}

	rec = &recorder{}
	e.prog = rec
	res, err := extract(t, e, data, dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused != done || res.Computed != 40-done {
		t.Errorf("resume reused %d and computed %d, want %d and %d", res.Reused, res.Computed, done, 40-done)
	}
	if !rec.logged("resuming") {
		t.Errorf("no resume message in %q", rec.logs)
	}
	sameFiles(t, ref, dir, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)

	res, err = extract(t, e, data, dir, Settings{})
	if err != nil || !res.UpToDate || res.Computed != 0 {
		t.Errorf("third run: %+v, %v", res, err)
	}
}

// TestResumeAfterKill runs Extract in a child process that kills itself
// with SIGKILL after two chunks, then resumes in this process.
func TestResumeAfterKill(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 12) // 24 images, batch 2: chunks of 8
	dir := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), "TLEARN_KILL_MODEL="+extractortest.TinyModel(t), "TLEARN_KILL_DATA="+data, "TLEARN_KILL_CACHE="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	m, err := cache.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.DoneRows() < 8 || m.Complete() {
		t.Fatalf("%d rows done after the kill", m.DoneRows())
	}
	e := openExtractor(t, Options{Batch: 2, Maps: true})
	res, err := extract(t, e, data, dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused != m.DoneRows() {
		t.Errorf("reused %d rows, the manifest had %d", res.Reused, m.DoneRows())
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := extract(t, e, data, ref, Settings{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, ref, dir, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)
}

// TestKillChild is the child of TestResumeAfterKill; it does nothing unless
// started by it.
func TestKillChild(t *testing.T) {
	model, data, dir := os.Getenv("TLEARN_KILL_MODEL"), os.Getenv("TLEARN_KILL_DATA"), os.Getenv("TLEARN_KILL_CACHE")
	if model == "" {
		t.Skip("helper process of TestResumeAfterKill")
	}
	ortlibtest.Init(t)
	// Killed in the middle of the third chunk: two are recorded, the
	// third is partly written.
	rec := &recorder{cancelAt: 20, onCancel: func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }}
	e, err := Open(model, Options{Size: extractortest.Size, Batch: 2, Maps: true, Progress: rec, ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = extract(t, e, data, dir, Settings{})
	t.Fatalf("not killed; Extract returned %v", err)
}

func TestMismatchRefused(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 3)
	dir := filepath.Join(t.TempDir(), "cache")
	e := openExtractor(t, Options{Batch: 4})
	if _, err := extract(t, e, data, dir, Settings{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		o    Options
		s    Settings
		want string
	}{
		{"size", Options{Size: 64}, Settings{}, "size 32 (now 64)"},
		{"interpolation", Options{}, Settings{Interpolation: dataset.Bicubic}, "interpolation nearest (now bicubic)"},
		{"maps", Options{Maps: true}, Settings{}, "no maps (now with maps)"},
		{"split", Options{}, Settings{Split: &cache.SplitRef{Part: "train", Val: 0.2, Seed: 1}}, "split none (now train (validation fraction 0.2, seed 1))"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tc.o.Batch = 4
			e2 := openExtractor(t, tc.o)
			_, err := extract(t, e2, data, dir, tc.s)
			// Library errors name no flags; the CLI adds the advice.
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "--") {
				t.Fatalf("got %v, want a mismatch about %q that names no flag", err, tc.want)
			}
		})
	}
	t.Run("another model", func(t *testing.T) {
		other := t.TempDir()
		if _, err := models.WriteTinyPrepared(other, 8); err != nil {
			t.Fatal(err)
		}
		e2, err := Open(other, Options{Size: extractortest.Size, ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer e2.Close()
		if _, err := extract(t, e2, data, dir, Settings{}); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "another model") {
			t.Fatalf("got %v", err)
		}
		res, err := extract(t, e2, data, dir, Settings{Force: true})
		if err != nil || res.Computed != 6 {
			t.Fatalf("--force: %+v, %v", res, err)
		}
		m, _ := cache.ReadManifest(dir)
		if m.Model.ExtractorSHA256 != e2.ModelSHA256() || m.Model.Dir != e2.ModelDir() {
			t.Errorf("manifest model %+v", m.Model)
		}
	})
}

func TestDatasetChangesDetected(t *testing.T) {
	t.Parallel()
	e := openExtractor(t, Options{Batch: 4})
	for _, tc := range []struct {
		desc   string
		change func(t *testing.T, data string)
		want   string
	}{
		{"added", func(t *testing.T, data string) {
			extractortest.WriteImage(t, filepath.Join(data, "b", "new.png"), 20, 20, 5)
		}, "1 added (b/new.png)"},
		{"removed", func(t *testing.T, data string) { os.Remove(filepath.Join(data, "a", "001.jpg")) }, "1 removed (a/001.jpg)"},
		{"modified", func(t *testing.T, data string) {
			p := filepath.Join(data, "a", "000.png")
			os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
		}, "1 changed"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			data := extractortest.MakeDataset(t, []string{"a", "b"}, 3)
			dir := filepath.Join(t.TempDir(), "cache")
			if _, err := extract(t, e, data, dir, Settings{}); err != nil {
				t.Fatal(err)
			}
			tc.change(t, data)
			_, err := extract(t, e, data, dir, Settings{})
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if _, err := extract(t, e, data, dir, Settings{Force: true}); err != nil {
				t.Fatalf("--force: %v", err)
			}
		})
	}
}

// badFiles are the ways an image file can be unusable, each written by a
// function of its path.
var badFiles = []struct {
	desc, name string
	write      func(t *testing.T, path string)
	reason     string
	late       bool // found during extraction, not by the check pass
}{
	{"zero bytes", "empty.png", func(t *testing.T, p string) { os.WriteFile(p, nil, 0o644) }, "empty", false},
	{"text with a .jpg extension", "notes.jpg", func(t *testing.T, p string) { os.WriteFile(p, []byte("shopping list: eggs"), 0o644) }, "not a JPEG", false},
	{"truncated JPEG", "cut.jpg", func(t *testing.T, p string) {
		extractortest.WriteImage(t, p, 40, 40, 1)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)*2/3], 0o644)
	}, "truncated", false},
	{"truncated PNG", "cut.png", func(t *testing.T, p string) {
		extractortest.WriteImage(t, p, 40, 40, 2)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)/2], 0o644)
	}, "truncated", false},
	{"corrupt header", "garbage.png", func(t *testing.T, p string) {
		extractortest.WriteImage(t, p, 40, 40, 3)
		b, _ := os.ReadFile(p)
		for i := 12; i < 40; i++ {
			b[i] ^= 0x5a
		}
		os.WriteFile(p, b, 0o644)
	}, "", false},
	// Header and trailer intact, a damaged checksum inside: only a full
	// decode finds it, during extraction (the Drop path).
	{"corrupt data, intact ends", "zz-bad-crc.png", func(t *testing.T, p string) {
		extractortest.WriteImage(t, p, 40, 40, 4)
		b, _ := os.ReadFile(p)
		b[len(b)-12-1] ^= 0xff // last byte of the IDAT chunk's CRC
		os.WriteFile(p, b, 0o644)
	}, "checksum", true},
}

func TestBadImages(t *testing.T) {
	t.Parallel()
	e := openExtractor(t, Options{Batch: 2, Maps: true})
	for _, tc := range badFiles {
		t.Run(tc.desc, func(t *testing.T) {
			data := extractortest.MakeDataset(t, []string{"a", "b"}, 10)
			bad := filepath.Join(data, "b", tc.name)
			tc.write(t, bad)
			dir := filepath.Join(t.TempDir(), "cache")
			_, err := extract(t, e, data, dir, Settings{})
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want an error naming %s (%s)", err, bad, tc.reason)
			}
			var de *dataset.DecodeError
			if !errors.As(err, &de) {
				t.Errorf("error %v is not a *dataset.DecodeError", err)
			}
			t.Log(err)
			// The check pass finds bad files before the cache exists; a
			// file found later leaves the chunks before it finished.
			m, merr := cache.ReadManifest(dir)
			if tc.late {
				if merr != nil || m.DoneRows() != 16 {
					t.Fatalf("finished chunks before the bad image: %v", merr)
				}
			} else if !errors.Is(merr, cache.ErrNotCache) {
				t.Fatalf("a cache was made before the check pass failed: %v", merr)
			}
			rec := &recorder{}
			e.prog = rec
			defer func() { e.prog = progress.Nop{} }()
			res, err := extract(t, e, data, dir, Settings{SkipBad: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.N != 20 || len(res.Skipped) != 1 || res.Skipped[0].Path != "b/"+tc.name {
				t.Fatalf("N %d, skipped %+v", res.N, res.Skipped)
			}
			if tc.late && res.Reused != 16 {
				t.Errorf("resumed with --skip-bad reused %d rows, want 16", res.Reused)
			}
			if !rec.logged(bad) {
				t.Errorf("skip not reported: %q", rec.logs)
			}
			c, err := cache.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, it := range c.Manifest.Items {
				if it.Path == "b/"+tc.name {
					t.Errorf("bad image in the cache")
				}
			}
			// A fresh --skip-bad run gives the same arrays as the resumed one.
			ref := filepath.Join(t.TempDir(), "ref")
			if _, err := extract(t, e, data, ref, Settings{SkipBad: true}); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, ref, dir, cache.FeaturesFile, cache.LabelsFile, cache.MapsFile)
		})
	}
}

func TestCacheFolderErrors(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 2)
	e := openExtractor(t, Options{})
	file := filepath.Join(t.TempDir(), "cache")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, s := range []Settings{{}, {Force: true}} {
		if _, err := extract(t, e, data, file, s); err == nil || !strings.Contains(err.Error(), "is a file") {
			t.Errorf("force %v: cache path that is a file: %v", s.Force, err)
		}
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "thesis.tex"), nil, 0o644)
	if _, err := extract(t, e, data, full, Settings{Force: true}); err == nil || !strings.Contains(err.Error(), "thesis.tex") {
		t.Errorf("non-empty folder: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	modelDir := extractortest.TinyModel(t)
	for _, tc := range []struct {
		desc string
		dir  string
		o    Options
		want string
	}{
		{"size not a multiple", modelDir, Options{Size: 40}, "multiple of 32"},
		{"batch", modelDir, Options{Batch: -1}, "batch"},
		{"not prepared", t.TempDir(), Options{}, "not a prepared model folder"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tc.o.ORT.Device = ortlib.DeviceCPU
			e, err := Open(tc.dir, tc.o)
			if err == nil {
				e.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v does not mention %q", err, tc.want)
			}
			var se *SizeError
			if isSize := errors.As(err, &se); isSize != (tc.o.Size != 0) || (isSize && (se.Size != tc.o.Size || se.Model != tc.dir)) {
				t.Errorf("%v: *SizeError %v (%+v), want one for size %d only", err, isSize, se, tc.o.Size)
			}
		})
	}
}

func TestInputSize(t *testing.T) {
	t.Parallel()
	modelDir := extractortest.TinyModel(t)
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size, want int
		why        string // "" when the size is accepted
	}{
		{0, spec.DefaultSize, ""},
		{32, 32, ""},
		{64, 64, ""},
		{33, 0, "input size 33 is not a multiple of 32 (the model halves it 5 times); try 32"},
		{80, 0, "try 96"},
		{5000, 0, "input size 5000, want 1..4096"},
		{-32, 0, "want 1..4096"},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			got, err := InputSize(modelDir, tc.size)
			var se *SizeError
			switch {
			case tc.why == "" && (err != nil || got != tc.want):
				t.Fatalf("InputSize = %d, %v; want %d", got, err, tc.want)
			case tc.why != "" && (!errors.As(err, &se) || se.Size != tc.size || !strings.Contains(err.Error(), tc.why) || !strings.HasPrefix(err.Error(), "extractor: "+modelDir+": ")):
				t.Fatalf("InputSize error %v, want a *SizeError saying %q", err, tc.why)
			}
		})
	}
	if _, err := InputSize(t.TempDir(), 32); err == nil || errors.As(err, new(*SizeError)) {
		t.Errorf("folder without a model: %v, want an error that is not a *SizeError", err)
	}
}

// TestCUDAFallback runs on the CPU-only library: auto falls back to CPU,
// silently on a machine without an NVIDIA driver and with one line where
// there is one; cuda is an error.
func TestCUDAFallback(t *testing.T) {
	t.Parallel()
	modelDir := extractortest.TinyModel(t)
	if ok, _ := ortlib.CUDAStatus(); ok {
		t.Skip("this ONNX Runtime library has CUDA: no fallback to test")
	}
	rec := &recorder{}
	e, err := Open(modelDir, Options{Size: extractortest.Size, Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dev, why := e.Device()
	rep, err := ortlib.CheckCUDA()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Driver == "" && rep.LibCUDA == "" && rep.Provider == "" {
		if dev != ortlib.DeviceCPU || why != "" || len(rec.logs) != 0 {
			t.Errorf("device %q, reason %q, logged %q; want cpu and no line without an NVIDIA driver", dev, why, rec.logs)
		}
	} else if dev != ortlib.DeviceCPU || len(rec.logs) != 1 || !strings.Contains(rec.logs[0], "tlearn doctor") {
		t.Errorf("device %q, logged %q; want cpu and one line naming tlearn doctor", dev, rec.logs)
	}
	if e, err := Open(modelDir, Options{Size: extractortest.Size, ORT: ortlib.Options{Device: ortlib.DeviceCUDA}}); err == nil {
		e.Close()
		t.Error("--device cuda worked without CUDA")
	} else if !strings.Contains(err.Error(), "CUDA") {
		t.Errorf("cuda error %v does not mention CUDA", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	var nilE *Extractor
	if err := nilE.Close(); err != nil {
		t.Error(err)
	}
	e, err := Open(extractortest.TinyModel(t), Options{Size: extractortest.Size, ORT: ortlib.Options{Device: ortlib.DeviceCPU}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Error(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSubsetAndSplit(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 5)
	src := openSource(t, data)
	train, val, err := dataset.Split(src, 0.4, 3)
	if err != nil {
		t.Fatal(err)
	}
	e := openExtractor(t, Options{Batch: 4})
	root := t.TempDir()
	for _, part := range []struct {
		name string
		idx  []int
	}{{"train", train}, {"val", val}} {
		dir := filepath.Join(root, part.name)
		res, err := e.Extract(context.Background(), src, part.idx, dir, Settings{Split: &cache.SplitRef{Part: part.name, Val: 0.4, Seed: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if res.N != len(part.idx) {
			t.Errorf("%s: N %d, want %d", part.name, res.N, len(part.idx))
		}
		c, err := cache.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range part.idx {
			if c.Manifest.Items[k].Path != src.Items[i].Path {
				t.Errorf("%s row %d is %s, want %s", part.name, k, c.Manifest.Items[k].Path, src.Items[i].Path)
			}
		}
		c.Close()
	}
}

func TestChunkSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, b, want int }{
		{10, 8, 32}, {10000, 8, 32}, {50000, 8, 104}, {1000000, 32, 2016}, {5, 1, 4},
	} {
		t.Run(fmt.Sprint(tc.n, "/", tc.b), func(t *testing.T) {
			got := cache.ChunkSize(tc.n, tc.b)
			if got != tc.want || got%tc.b != 0 {
				t.Errorf("chunkSize(%d, %d) = %d, want %d", tc.n, tc.b, got, tc.want)
			}
		})
	}
}

// TestCancelRunInFlight cancels while ORT runs a batch of a model large
// enough to take a while, then checks that the Extractor still runs with a
// fresh context (the terminate flag is cleared).
func TestCancelRunInFlight(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	dir := t.TempDir()
	if _, err := models.WriteSynthPrepared(dir, models.SynthSettings{Seed: 1, Width: 0.25}); err != nil {
		t.Fatal(err)
	}
	e, err := Open(dir, Options{Size: 128, Batch: 4, ORT: ortlib.Options{Device: ortlib.DeviceCPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(5*time.Millisecond, cancel)
	for range 100 {
		if err = e.run(ctx); err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run after cancel: %v", err)
	}
	if err := e.run(context.Background()); err != nil {
		t.Fatalf("run with a fresh context: %v", err)
	}
}

// TestResumeRefusesChangedChunk flips a bit inside a finished chunk of an
// interrupted cache: resuming stops with the file and the chunk's rows
// rather than building on them.
func TestResumeRefusesChangedChunk(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 20) // 40 images, batch 2: chunks of 8
	e := openExtractor(t, Options{Batch: 2})
	dir := filepath.Join(t.TempDir(), "cache")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.prog = &recorder{cancelAt: 17, onCancel: cancel}
	if _, err := e.Extract(ctx, openSource(t, data), nil, dir, Settings{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Extract returned %v", err)
	}
	p := filepath.Join(dir, cache.FeaturesFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cache.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-(m.N-3)*m.FeatureDim*4] ^= 0x10 // row 3
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e.prog = &recorder{}
	_, err = extract(t, e, data, dir, Settings{})
	if !errors.Is(err, cache.ErrCorrupt) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "rows [0,8)") {
		t.Errorf("resume over a changed chunk: %v; want ErrCorrupt naming %s and rows [0,8)", err, p)
	}
}
