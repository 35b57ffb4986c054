package extractortest

import (
	"bytes"
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

	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
)

// Size is the input side of the tests: the smallest VGG accepts (five 2x2
// pools), with 2x2 maps.
const Size = 32

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// TinyModel initializes ONNX Runtime, prepares models.TinyVGG once per
// test binary and returns its folder (a copy per test would cost a prepare
// each). The test binary's TestMain removes it with RemoveTinyModel.
func TinyModel(t testing.TB) string {
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

// RemoveTinyModel removes the folder of TinyModel, if one was made.
func RemoveTinyModel() {
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
}

// WriteImage writes a seeded noise-and-gradient image of w×h as PNG or
// JPEG (by path's extension).
func WriteImage(t testing.TB, path string, w, h int, seed uint64) {
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

// MakeDataset writes perClass images into each class folder under a new
// folder, alternating PNG and JPEG and sizes, and returns the folder.
func MakeDataset(t testing.TB, classes []string, perClass int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	for c, class := range classes {
		for i := range perClass {
			ext := ".png"
			if i%2 == 1 {
				ext = ".jpg"
			}
			WriteImage(t, filepath.Join(dir, class, fmt.Sprintf("%03d%s", i, ext)), 30+i%7, 28+i%5, uint64(c*1000+i))
		}
	}
	return dir
}
