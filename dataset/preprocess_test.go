package dataset

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// twoPixels is a 2×1 image: (255, 0, 128) and (10, 200, 50).
func twoPixels() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 2, 1))
	copy(img.Pix, []uint8{255, 0, 128, 255, 10, 200, 50, 255})
	return img
}

func TestPreprocessPresets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		p    Preprocessing
		want []float32
	}{
		{
			// NCHW RGB: (x/255 - mean) / std, planes R, G, B.
			"torchvision", TorchvisionPreprocessing,
			[]float32{
				(1 - 0.485) / 0.229, (10.0/255 - 0.485) / 0.229, // 2.2489083, -1.9466564
				(0 - 0.456) / 0.224, (200.0/255 - 0.456) / 0.224, // -2.0357143, 1.4656863
				(128.0/255 - 0.406) / 0.225, (50.0/255 - 0.406) / 0.225, // 0.4264924, -0.9329847
			},
		},
		{
			// NHWC BGR: x - mean, per pixel B, G, R.
			"caffe", CaffePreprocessing,
			[]float32{
				128 - 103.939, 0 - 116.779, 255 - 123.68, // 24.061, -116.779, 131.32
				50 - 103.939, 200 - 116.779, 10 - 123.68, // -53.939, 83.221, -113.68
			},
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dst := make([]float32, 3*6)
			for i := range dst {
				dst[i] = float32(math.NaN())
			}
			Preprocess(dst, 1, twoPixels(), tc.p) // the second image of a batch of 3
			for i, v := range dst {
				if i < 6 || i >= 12 {
					if !math.IsNaN(float64(v)) {
						t.Errorf("dst[%d] = %v written outside image 1", i, v)
					}
					continue
				}
				if want := tc.want[i-6]; !tol.Close(float64(v), float64(want), 1e-6, 1e-6) {
					t.Errorf("dst[%d] = %v, want %v", i, v, want)
				}
			}
		})
	}
}

// TestPreprocessTypes checks that every fast path and the At fallback give
// the same values as the RGBA path.
func TestPreprocessTypes(t *testing.T) {
	t.Parallel()
	src := testImage(17, 11, 9)
	rgba := image.NewRGBA(src.Rect)
	draw.Draw(rgba, rgba.Rect, src, image.Point{}, draw.Src)

	ycc := image.NewYCbCr(src.Rect, image.YCbCrSubsampleRatio420)
	for y := 0; y < 11; y++ {
		for x := 0; x < 17; x++ {
			c := src.NRGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)] = yy
			ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = cb, cr
		}
	}
	yccRGBA := image.NewRGBA(src.Rect)
	draw.Draw(yccRGBA, yccRGBA.Rect, ycc, image.Point{}, draw.Src)

	withAlpha := image.NewNRGBA(src.Rect)
	copy(withAlpha.Pix, src.Pix)
	for i := 3; i < len(withAlpha.Pix); i += 4 {
		withAlpha.Pix[i] = uint8(i)
	}
	gray := image.NewGray(src.Rect)
	draw.Draw(gray, gray.Rect, src, image.Point{}, draw.Src)
	grayRGBA := image.NewRGBA(src.Rect)
	draw.Draw(grayRGBA, grayRGBA.Rect, gray, image.Point{}, draw.Src)
	pal := image.NewPaletted(src.Rect, color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{250, 128, 7, 255}})
	palRGBA := image.NewRGBA(src.Rect)
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 2)
	}
	draw.Draw(palRGBA, palRGBA.Rect, pal, image.Point{}, draw.Src)
	// A sub-image: bounds not at the origin.
	big := image.NewRGBA(image.Rect(-3, -2, 30, 20))
	draw.Draw(big, image.Rect(5, 4, 22, 15), rgba, image.Point{}, draw.Src)
	sub := big.SubImage(image.Rect(5, 4, 22, 15))

	for _, p := range []Preprocessing{TorchvisionPreprocessing, CaffePreprocessing} {
		for _, tc := range []struct {
			desc      string
			img, want image.Image
		}{
			{"nrgba", src, rgba},
			{"nrgba alpha dropped", withAlpha, rgba},
			{"ycbcr", ycc, yccRGBA},
			{"gray", gray, grayRGBA},
			{"paletted (fallback)", pal, palRGBA},
			{"sub-image", sub, rgba},
		} {
			t.Run(string(p.Layout)+"/"+tc.desc, func(t *testing.T) {
				got := make([]float32, 3*17*11)
				want := make([]float32, 3*17*11)
				Preprocess(got, 0, tc.img, p)
				Preprocess(want, 0, tc.want, p)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestPreprocessAllocs holds Preprocess to its promise of no allocation,
// on every fast path and in both layouts.
func TestPreprocessAllocs(t *testing.T) {
	// Not parallel: it counts allocations (testing.AllocsPerRun).
	src := testImage(8, 6, 1)
	rgba := image.NewRGBA(src.Rect)
	gray := image.NewGray(src.Rect)
	ycc := image.NewYCbCr(src.Rect, image.YCbCrSubsampleRatio420)
	dst := make([]float32, 3*8*6)
	for _, p := range []Preprocessing{TorchvisionPreprocessing, CaffePreprocessing} {
		for _, img := range []image.Image{src, rgba, gray, ycc} {
			if n := testing.AllocsPerRun(10, func() { Preprocess(dst, 0, img, p) }); n != 0 {
				t.Errorf("%s %T: %v allocations", p.Layout, img, n)
			}
		}
	}
}

func TestPreprocessPanics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		dst  []float32
		p    Preprocessing
	}{
		{"short destination", make([]float32, 5), TorchvisionPreprocessing},
		{"invalid preprocessing", make([]float32, 6), Preprocessing{}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			Preprocess(tc.dst, 0, twoPixels(), tc.p)
		})
	}
}

func TestResize(t *testing.T) {
	t.Parallel()
	src := testImage(40, 20, 1)
	rgba := image.NewRGBA(src.Rect)
	draw.Draw(rgba, rgba.Rect, src, image.Point{}, draw.Src)
	for _, interp := range Interpolations {
		t.Run(string(interp), func(t *testing.T) {
			out := Resize(rgba, 24, interp)
			if out.Bounds() != image.Rect(0, 0, 24, 24) {
				t.Errorf("bounds %v, want 24×24 (stretched)", out.Bounds())
			}
			if _, ok := out.(*image.RGBA); !ok {
				t.Errorf("type %T, want *image.RGBA", out)
			}
			g := image.NewGray(image.Rect(0, 0, 7, 9))
			if _, ok := Resize(g, 24, interp).(*image.Gray); !ok {
				t.Errorf("gray resized to %T", Resize(g, 24, interp))
			}
		})
	}
	square := image.NewRGBA(image.Rect(0, 0, 24, 24))
	if Resize(square, 24, Bicubic) != image.Image(square) {
		t.Error("an image of the right size was resized")
	}
	for _, s := range []string{"", "nearest", "bilinear", "bicubic", "lanczos3"} {
		if _, err := ParseInterpolation(s); err != nil {
			t.Errorf("ParseInterpolation(%q): %v", s, err)
		}
	}
	if _, err := ParseInterpolation("cubic"); err == nil {
		t.Error("ParseInterpolation accepted cubic")
	}
}
