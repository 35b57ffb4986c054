package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
)

// featureCache writes a complete cache of n rows of separable features
// (one Gaussian cluster per class; the clusters depend only on dim and the
// number of classes) as if extracted by the model with the given sha256.
func featureCache(t *testing.T, dir string, n, dim int, classes []string, sha string, seed uint64) {
	t.Helper()
	pre := json.RawMessage(`{"scale":1}`)
	m := &cache.Manifest{
		Fingerprint: cache.Fingerprint(cache.FingerprintInput{ExtractorSHA256: sha, Preset: "custom", Size: 32, Interpolation: "nearest", Preprocessing: pre}),
		Model:       cache.ModelRef{Dir: "/models/" + sha, ExtractorSHA256: sha, Preset: "custom"},
		Size:        32, Interpolation: "nearest", Preprocessing: pre,
		DataDir: "/data", Classes: classes, N: n, ChunkSize: 16, FeatureDim: dim,
	}
	for i := range n {
		m.Items = append(m.Items, cache.Item{Path: fmt.Sprintf("%s/%d-%d.png", classes[i%len(classes)], seed, i), Label: i % len(classes),
			ModTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	}
	w, err := cache.Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	centres := rand.New(rand.NewPCG(uint64(dim), uint64(len(classes))))
	c := make([]float32, len(classes)*dim)
	for i := range c {
		c[i] = float32(3 * centres.NormFloat64())
	}
	r := rand.New(rand.NewPCG(seed, 5))
	for s := 0; s < n; s += m.ChunkSize {
		rows := min(m.ChunkSize, n-s)
		f := make([]float32, rows*dim)
		l := make([]int32, rows)
		for i := range rows {
			label := m.Items[s+i].Label
			l[i] = int32(label)
			for j := range dim {
				f[i*dim+j] = c[label*dim+j] + float32(r.NormFloat64())
			}
		}
		if err := w.Write(s, f, l, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// cachePair writes DIR/train and DIR/val.
func cachePair(t *testing.T, dir string, classes []string) (train, val string) {
	t.Helper()
	train, val = filepath.Join(dir, "train"), filepath.Join(dir, "val")
	featureCache(t, train, 60, 12, classes, "aaaa", 1)
	featureCache(t, val, 30, 12, classes, "aaaa", 2)
	return train, val
}

// writeClassImages writes n seeded PNGs of varied sizes into dir/class.
func writeClassImages(t *testing.T, dir, class string, n int, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 17))
	for i := range n {
		w, h := 28+rng.IntN(12), 26+rng.IntN(12)
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		base := [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
		for y := range h {
			for x := range w {
				var c [3]uint8
				for k := range c {
					v := base[k] + 70*math.Sin(float64(x*(k+1)+2*y)/5) + rng.NormFloat64()*20
					c[k] = uint8(max(0, min(255, v)))
				}
				img.SetNRGBA(x, y, color.NRGBA{c[0], c[1], c[2], 255})
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, class, fmt.Sprintf("img%02d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
