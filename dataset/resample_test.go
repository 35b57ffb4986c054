package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"path/filepath"
	"testing"

	"github.com/nfnt/resize"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// The PIL references are made by scripts/pil-resize-fixtures.py (Debian's
// /usr/bin/python3, Pillow 9.4); pattern below must stay in step with its
// pattern().
//
//go:generate /usr/bin/python3 ../scripts/pil-resize-fixtures.py

// pilTolerance is the largest difference allowed from Pillow, in levels
// of 0..255. The resampler copies Pillow's arithmetic, so outputs are
// expected to be equal; one level leaves room for a different rounding of
// a weight in the last of its 22 bits.
const pilTolerance = 1

// pilCases are the fixtures of dataset/testdata/pil: input name, size,
// gray or RGB, and the filters resized with.
var pilCases = []struct {
	name    string
	w, h    int
	gray    bool
	filters []Interpolation
}{
	{"rgb640x480", 640, 480, false, []Interpolation{Bilinear, Bicubic, Lanczos3}},
	{"rgb1000x300", 1000, 300, false, []Interpolation{Bilinear, Bicubic}},
	{"rgb300x40", 300, 40, false, []Interpolation{Bilinear, Bicubic}},
	{"rgb32x32", 32, 32, false, []Interpolation{Bilinear, Bicubic}},
	{"gray640x480", 640, 480, true, []Interpolation{Bicubic}},
}

// hash32 and pattern are scripts/pil-resize-fixtures.py's, in Go.
func hash32(x, y, c int) uint32 {
	h := uint32(x)*73856093 ^ uint32(y)*19349663 ^ uint32(c)*83492791
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

func pattern(x, y, c, w, h int) uint8 {
	switch {
	case y < h/8:
		return uint8(hash32(x, y, c))
	case y < h/2:
		return uint8([3]int{255 * x / (w - 1), 255 * y / (h - 1), 255 * (x + y) / (w + h - 2)}[c])
	case x < w/2:
		if (x/7+y/5+c)%2 == 1 {
			return 235
		}
		return 20
	case x%11 == 0 || y%13 < 2:
		return 255
	}
	return uint8(100 + 40*c)
}

// patternImage is the generated input: *image.Gray or opaque *image.RGBA.
func patternImage(w, h int, gray bool) image.Image {
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.Pix[y*g.Stride+x] = pattern(x, y, 0, w, h)
			}
		}
		return g
	}
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			o := y*m.Stride + 4*x
			m.Pix[o], m.Pix[o+1], m.Pix[o+2], m.Pix[o+3] = pattern(x, y, 0, w, h), pattern(x, y, 1, w, h), pattern(x, y, 2, w, h), 255
		}
	}
	return m
}

// pixelDiff compares the colour channels of two images of the same size:
// the largest and the mean absolute difference in levels.
func pixelDiff(t testing.TB, a, b image.Image) (maxDiff int, mean float64) {
	t.Helper()
	if a.Bounds() != b.Bounds() {
		t.Fatalf("bounds %v and %v", a.Bounds(), b.Bounds())
	}
	var sum, n int
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			for _, d := range [3]int{int(ar>>8) - int(br>>8), int(ag>>8) - int(bg>>8), int(ab>>8) - int(bb>>8)} {
				d = max(d, -d)
				maxDiff = max(maxDiff, d)
				sum += d
				n++
			}
		}
	}
	return maxDiff, float64(sum) / float64(n)
}

// TestResizeMatchesPIL checks bilinear, bicubic and lanczos3 against
// Pillow's Image.resize on generated images, downsampling (antialiased)
// and upsampling. With -v it also logs how far github.com/nfnt/resize's
// filters, tlearn's resizer before, are from the same references.
func TestResizeMatchesPIL(t *testing.T) {
	t.Parallel()
	nfnt := map[Interpolation]resize.InterpolationFunction{Bilinear: resize.Bilinear, Bicubic: resize.Bicubic, Lanczos3: resize.Lanczos3}
	for _, tc := range pilCases {
		src := patternImage(tc.w, tc.h, tc.gray)
		for _, interp := range tc.filters {
			name := fmt.Sprintf("%s-%s", tc.name, interp)
			t.Run(name, func(t *testing.T) {
				want := fixtures.ReadPNG(t, filepath.Join("testdata", "pil", name+".png"))
				got := Resize(src, 224, interp)
				if _, isGray := got.(*image.Gray); isGray != tc.gray {
					t.Errorf("type %T", got)
				}
				maxDiff, mean := pixelDiff(t, got, want)
				if maxDiff > pilTolerance {
					t.Errorf("max difference from Pillow %d levels (mean %.4f), want ≤ %d", maxDiff, mean, pilTolerance)
				}
				nMax, nMean := pixelDiff(t, resize.Resize(224, 224, src, nfnt[interp]), want)
				t.Logf("vs Pillow: tlearn max %d mean %.4f; nfnt/resize max %d mean %.4f", maxDiff, mean, nMax, nMean)
			})
		}
	}
}

// TestResizeNearestUnchanged pins nearest's pixels: caches, fixtures and
// classifiers made with nearest (Keras parity) must keep their meaning.
// The sums were taken with github.com/nfnt/resize's NearestNeighbor,
// tlearn's nearest since the start.
func TestResizeNearestUnchanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		w, h, size int
		want       string
	}{
		{32, 32, 224, "e1f043faedd7c764"},
		{640, 480, 224, "7b737da2e44da2ea"},
		{300, 40, 224, "f620aaf0f1d68db4"},
	} {
		t.Run(fmt.Sprintf("%dx%d-to-%d", tc.w, tc.h, tc.size), func(t *testing.T) {
			out := Resize(patternImage(tc.w, tc.h, false), tc.size, Nearest).(*image.RGBA)
			sum := sha256.Sum256(out.Pix)
			if got := hex.EncodeToString(sum[:8]); got != tc.want {
				t.Errorf("sha256 of the pixels %s, want %s", got, tc.want)
			}
		})
	}
}

// BenchmarkResize measures one resize to 224×224, tlearn's resampler
// against github.com/nfnt/resize's same filter (and nfnt's nearest, which
// tlearn keeps), from CIFAR's 32×32 and from a photo's 640×480. Run it with
// GOMAXPROCS=1 to compare the CPU cost of one image: nfnt spreads one
// image over every core, tlearn's loader resizes one image per worker.
func BenchmarkResize(b *testing.B) {
	nfnt := map[Interpolation]resize.InterpolationFunction{Nearest: resize.NearestNeighbor, Bilinear: resize.Bilinear, Bicubic: resize.Bicubic}
	for _, sz := range []image.Point{{32, 32}, {640, 480}} {
		src := patternImage(sz.X, sz.Y, false)
		for _, interp := range []Interpolation{Nearest, Bilinear, Bicubic} {
			b.Run(fmt.Sprintf("src=%dx%d/%s/tlearn", sz.X, sz.Y, interp), func(b *testing.B) {
				start := cpuTime(b)
				for b.Loop() {
					Resize(src, 224, interp)
				}
				reportCPU(b, start)
			})
			if interp == Nearest {
				continue // tlearn's nearest is nfnt's
			}
			b.Run(fmt.Sprintf("src=%dx%d/%s/nfnt", sz.X, sz.Y, interp), func(b *testing.B) {
				start := cpuTime(b)
				for b.Loop() {
					resize.Resize(224, 224, src, nfnt[interp])
				}
				reportCPU(b, start)
			})
		}
	}
}

// A flat image stays flat, whatever the sizes (weights renormalised at the
// edges, sums rounded), and no size makes the resampler index out of range.
func TestResizeFlat(t *testing.T) {
	t.Parallel()
	sizes := []int{1, 2, 3, 5, 31, 32, 33, 100, 225, 641}
	for _, interp := range []Interpolation{Bilinear, Bicubic, Lanczos3} {
		for _, w := range sizes {
			for _, h := range sizes {
				src := image.NewRGBA(image.Rect(0, 0, w, h))
				for i := 0; i < len(src.Pix); i += 4 {
					src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = 200, 3, 255, 255
				}
				for _, size := range []int{1, 7, 224} {
					out := Resize(src, size, interp).(*image.RGBA)
					for i := 0; i < len(out.Pix); i += 4 {
						if p := out.Pix[i : i+4]; p[0] != 200 || p[1] != 3 || p[2] != 255 || p[3] != 255 {
							t.Fatalf("%s %dx%d→%d: pixel %d is %v, want [200 3 255 255]", interp, w, h, size, i/4, p)
						}
					}
				}
			}
		}
	}
	if out := Resize(image.NewRGBA(image.Rect(0, 0, 0, 5)), 4, Bilinear); out.Bounds() != image.Rect(0, 0, 4, 4) {
		t.Errorf("an empty image resized to %v", out.Bounds())
	}
}
