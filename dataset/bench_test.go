package dataset

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// BenchmarkPipeline measures decode + resize + preprocess of one JPEG into
// a batch slot, as a Loader worker does it (scratch reused): the common
// CIFAR case (32×32 upscaled) at a few output sizes and a photo-sized one.
func BenchmarkPipeline(b *testing.B) {
	dir := b.TempDir()
	for _, src := range []int{32, 640} {
		path := filepath.Join(dir, fmt.Sprintf("%d.jpg", src))
		fixtures.WriteFile(b, path, encode(b, "jpeg", smoothImage(src, src*3/4)))
		for _, size := range []int{64, 128, 224} {
			for _, interp := range []Interpolation{Nearest, Bilinear} {
				b.Run(fmt.Sprintf("src=%d/size=%d/%s", src, size, interp), func(b *testing.B) {
					d := decoder{maxPixels: DefaultMaxPixels}
					dst := make([]float32, 3*size*size)
					b.ReportAllocs()
					for b.Loop() {
						img, err := d.decodeFile(path)
						if err != nil {
							b.Fatal(err)
						}
						Preprocess(dst, 0, Resize(img, size, interp), TorchvisionPreprocessing)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
				})
			}
		}
	}
}

// smoothImage is a gradient: it compresses (and decodes) like a photo, where
// testImage's pattern is close to noise.
func smoothImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(255 * x / w), G: uint8(255 * y / h), B: uint8(128 + 100*(x-y)/(w+h)), A: 0xff})
		}
	}
	return img
}

// BenchmarkLoader measures whole batches of 32×32 JPEGs at 224, with the
// default two workers, as the extractor consumes them.
func BenchmarkLoader(b *testing.B) {
	dir := b.TempDir()
	const perClass = 32
	for c := range 2 {
		for i := range perClass {
			fixtures.WriteFile(b, filepath.Join(dir, fmt.Sprint(c), fmt.Sprintf("%03d.jpg", i)), encode(b, "jpeg", smoothImage(32, 32+i)))
		}
	}
	src, err := Open(dir, Settings{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		workers, views int
	}{{1, 1}, {2, 1}, {2, 4}} {
		name := fmt.Sprintf("workers=%d", tc.workers)
		s := LoaderSettings{Size: 224, Batch: 32, Workers: tc.workers}
		if tc.views > 1 {
			// Images/s counts views: each is one image for the backbone.
			name += fmt.Sprintf("/views=%d,flip,crop", tc.views)
			s.Views, s.Augment = tc.views, Augment{Flip: true, Crop: DefaultCropScale}
		}
		b.Run(name, func(b *testing.B) {
			images := 0
			for b.Loop() {
				l, err := NewLoader(src, nil, s)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]float32, l.BatchLen())
				for {
					bt, err := l.Next(context.Background(), dst)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					images += bt.Count
				}
				l.Close()
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
