package extractor

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
)

// testSize is the input side of the tests: the smallest VGG accepts (five
// 2x2 pools), with 2x2 maps.
const testSize = 32

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyModel prepares models.TinyVGG once per test binary and returns its
// folder (a copy per test would cost a prepare each).
func tinyModel(t testing.TB) string {
	t.Helper()
	ortlibtest.Init(t)
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "tlearn-extractor-model-")
		if tinyErr == nil {
			_, tinyErr = models.WriteTinyPrepared(tinyDir, 7)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// writeImage writes a seeded noise-and-gradient image of w×h as PNG or
// JPEG (by path's extension).
func writeImage(t testing.TB, path string, w, h int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	for y := range h {
		for x := range w {
			var c [3]uint8
			for k := range c {
				v := base[k] + 60*math.Sin(float64(x*(k+1)+y)/5) + rng.NormFloat64()*20
				c[k] = uint8(max(0, min(255, v)))
			}
			img.SetNRGBA(x, y, color.NRGBA{c[0], c[1], c[2], 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".jpg") {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeDataset writes perClass images into each class folder under a new
// folder, alternating PNG and JPEG and sizes, and returns the folder.
func makeDataset(t testing.TB, classes []string, perClass int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	for c, class := range classes {
		for i := range perClass {
			ext := ".png"
			if i%2 == 1 {
				ext = ".jpg"
			}
			writeImage(t, filepath.Join(dir, class, fmt.Sprintf("%03d%s", i, ext)), 30+i%7, 28+i%5, uint64(c*1000+i))
		}
	}
	return dir
}

func openSource(t testing.TB, dir string) *dataset.Source {
	t.Helper()
	src, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// openExtractor opens the tiny model at testSize.
func openExtractor(t testing.TB, o Options) *Extractor {
	t.Helper()
	dir := tinyModel(t)
	if o.Size == 0 {
		o.Size = testSize
	}
	if o.ORT.Device == "" {
		o.ORT.Device = ortlib.DeviceCPU
	}
	if o.ORT.Threads == 0 {
		o.ORT.Threads = 1
	}
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// recorder is a Progress that keeps what it is told; cancel, when set, is
// called once Add has counted cancelAt items of the extract phase.
type recorder struct {
	mu       sync.Mutex
	logs     []string
	phases   []string
	phase    string
	added    int // in the extract phase
	cancelAt int
	onCancel func()
}

func (r *recorder) Log(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, msg)
}

func (r *recorder) Start(phase string, total, done int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, fmt.Sprintf("%s %d/%d", phase, done, total))
	r.phase = phase
}

func (r *recorder) Add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.phase != "extract" {
		return
	}
	r.added += n
	if r.onCancel != nil && r.added >= r.cancelAt {
		r.onCancel()
		r.onCancel = nil
	}
}

func (r *recorder) Finish() {}

func (r *recorder) logged(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.logs {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// extract runs Extract on all of dir's images into cacheDir.
func extract(t testing.TB, e *Extractor, dataDir, cacheDir string, s Settings) (*Result, error) {
	t.Helper()
	return e.Extract(context.Background(), openSource(t, dataDir), nil, cacheDir, s)
}

// sameFiles fails unless the array files of two caches are byte-identical.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, n := range names {
		x, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s", n, a, b)
		}
	}
}
