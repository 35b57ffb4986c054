package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// rgbOf returns the straight RGB colour of c, 8 bits per channel (the high
// byte of 16-bit colours).
func rgbOf(c color.Color) [3]uint8 {
	if n, ok := c.(color.NRGBA); ok { // straight already: converting would lose it at low alpha
		return [3]uint8{n.R, n.G, n.B}
	}
	n, ok := c.(color.NRGBA64)
	if !ok {
		n = color.NRGBA64Model.Convert(c).(color.NRGBA64)
	}
	return [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
}

func TestDecodeFormats(t *testing.T) {
	t.Parallel()
	const w, h = 16, 8
	opaque := testImage(w, h, 3)
	alpha := testImage(w, h, 5)
	for i := range alpha.Pix {
		if i%4 == 3 {
			alpha.Pix[i] = uint8(i * 13) // includes 0: a transparent pixel keeps its stored colour
		}
	}
	rgba64 := image.NewRGBA64(opaque.Rect)
	nrgba64 := image.NewNRGBA64(opaque.Rect)
	gray16 := image.NewGray16(opaque.Rect)
	gray := image.NewGray(opaque.Rect)
	for y := range h {
		for x := range w {
			c := alpha.NRGBAAt(x, y)
			rgba64.SetRGBA64(x, y, color.RGBA64{R: uint16(c.R)<<8 | 0x7f, G: uint16(c.G)<<8 | 0x80, B: uint16(c.B)<<8 | 0xff, A: 0xffff})
			nrgba64.SetNRGBA64(x, y, color.NRGBA64{R: uint16(c.R)<<8 | 0x7f, G: uint16(c.G)<<8 | 0x80, B: uint16(c.B)<<8 | 0xff, A: uint16(c.A) << 8})
			gray16.SetGray16(x, y, color.Gray16{Y: uint16(c.R)<<8 | 0xaa})
			gray.SetGray(x, y, color.Gray{Y: c.G})
		}
	}
	pal := image.NewPaletted(opaque.Rect, color.Palette{
		color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 0}, color.NRGBA{1, 2, 3, 128}, color.NRGBA{255, 255, 255, 255},
	})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 4)
	}
	gifPal := image.NewPaletted(opaque.Rect, color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}, color.RGBA{1, 2, 3, 255}})
	for i := range gifPal.Pix {
		gifPal.Pix[i] = uint8(i % 3)
	}
	// WebP fixture: each channel takes two values.
	webp := image.NewNRGBA(opaque.Rect)
	for i := range webp.Pix {
		webp.Pix[i] = []uint8{10, 200}[(i/4+i%4)%2]
	}
	cmyk := image.NewCMYK(opaque.Rect)
	for y := range h {
		for x := range w {
			// Flat 8×8 blocks: exact through a quality-100 JPEG.
			k := uint8(x/8*80 + y/8*40)
			cmyk.SetCMYK(x, y, color.CMYK{C: 200 - k, M: 30 + k, Y: 90, K: 20 + k/4})
		}
	}
	flat := image.NewNRGBA(opaque.Rect)
	for i := range flat.Pix {
		flat.Pix[i] = []uint8{200, 120, 40, 255}[i%4]
	}
	jpegRef := func(data []byte) image.Image {
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	rgbJPEG := encode(t, "jpeg", opaque)
	grayJPEG := encode(t, "jpeg", gray)
	for _, tc := range []struct {
		desc, name string
		data       []byte
		want       image.Image // compared through rgbOf
		tol        int
		gray       bool
	}{
		{"png rgb", "a.png", encode(t, "png", opaque), opaque, 0, false},
		{"png alpha dropped", "a.png", encode(t, "png", alpha), alpha, 0, false},
		{"png 16-bit rgb", "a.png", encode(t, "png", rgba64), rgba64, 0, false},
		{"png 16-bit alpha", "a.png", encode(t, "png", nrgba64), nrgba64, 0, false},
		{"png 16-bit gray", "a.png", encode(t, "png", gray16), gray16, 0, true},
		{"png gray", "a.png", encode(t, "png", gray), gray, 0, true},
		{"png paletted with transparency", "a.png", encode(t, "png", pal), pal, 0, false},
		{"jpeg ycbcr", "a.jpg", rgbJPEG, jpegRef(rgbJPEG), 0, false},
		{"jpeg flat colour", "a.JPEG", encode(t, "jpeg", flat), flat, 2, false},
		{"jpeg gray", "a.jpeg", grayJPEG, jpegRef(grayJPEG), 0, true},
		{"jpeg cmyk (adobe)", "a.jpg", cmykJPEG(t, cmyk), cmyk, 2, false},
		{"gif", "a.gif", encode(t, "gif", gifPal), gifPal, 0, false},
		{"bmp", "a.bmp", encode(t, "bmp", opaque), opaque, 0, false},
		{"bmp paletted", "a.bmp", encode(t, "bmp", gifPal), gifPal, 0, false},
		{"tiff alpha", "a.tif", encode(t, "tiff", alpha), alpha, 0, false},
		{"tiff 16-bit", "a.tiff", encode(t, "tiff", nrgba64), nrgba64, 0, false},
		{"tiff 16-bit gray", "a.tiff", encode(t, "tiff", gray16), gray16, 0, true},
		{"webp lossless alpha", "a.webp", webpLossless(t, webp), webp, 0, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name)
			fixtures.WriteFile(t, path, tc.data)
			img, err := DecodeFile(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch m := img.(type) {
			case *image.Gray:
				if !tc.gray {
					t.Errorf("got gray, want RGB")
				}
			case *image.RGBA:
				if tc.gray {
					t.Errorf("got RGBA, want gray")
				}
				if !m.Opaque() {
					t.Errorf("alpha kept")
				}
			default:
				t.Fatalf("got %T, want *image.Gray or *image.RGBA", img)
			}
			if img.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("bounds %v", img.Bounds())
			}
			bad := 0
			for y := range h {
				for x := range w {
					got, want := rgbOf(img.At(x, y)), rgbOf(tc.want.At(x, y))
					if tc.gray {
						want = [3]uint8{want[0], want[0], want[0]}
						if _, isGray := tc.want.(*image.YCbCr); !isGray {
							g := color.Gray16Model.Convert(tc.want.At(x, y)).(color.Gray16)
							want = [3]uint8{uint8(g.Y >> 8), uint8(g.Y >> 8), uint8(g.Y >> 8)}
						}
					}
					for c := range 3 {
						if d := int(got[c]) - int(want[c]); d > tc.tol || -d > tc.tol {
							if bad++; bad < 4 {
								t.Errorf("pixel (%d,%d) = %v, want %v ± %d", x, y, got, want, tc.tol)
							}
						}
					}
				}
			}
		})
	}
}

func TestDecodeBad(t *testing.T) {
	t.Parallel()
	good := encode(t, "png", testImage(16, 16, 1))
	jpg := encode(t, "jpeg", testImage(64, 64, 1))
	corrupt := append([]byte(nil), good...)
	for i := 60; i < len(corrupt)-20; i++ {
		corrupt[i] ^= 0x5a
	}
	for _, tc := range []struct {
		desc, name string
		data       []byte
		max        int
		is         error
		text       string
	}{
		{"zero bytes", "a.png", nil, 0, ErrEmptyFile, "empty file"},
		{"text with image extension", "a.jpg", []byte("hello, I am not a JPEG"), 0, ErrNotImage, "not a JPEG"},
		{"truncated png", "a.png", good[:len(good)/2], 0, nil, "png"},
		{"truncated jpeg", "a.jpg", jpg[:len(jpg)/2], 0, nil, "jpeg"},
		{"corrupt png", "a.png", corrupt, 0, nil, "png"},
		{"bomb header", "a.png", pngWithSize(t, 100000, 100000), 0, ErrTooLarge, "100000×100000"},
		{"over a set limit", "a.png", good, 255, ErrTooLarge, "more than 255"},
		{"zero width", "a.png", pngWithSize(t, 0, 10), 0, nil, "dimension"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name)
			fixtures.WriteFile(t, path, tc.data)
			_, err := DecodeFile(path, tc.max)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *DecodeError", err, err)
			}
			if de.Path != path || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
		})
	}
	_, err := DecodeFile(filepath.Join(t.TempDir(), "missing.png"), 0)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
	if _, err := DecodeFile(filepath.Join(t.TempDir()), 0); !errors.As(err, &de) {
		t.Errorf("folder: got %v", err)
	}
}

// FuzzDecode feeds outside bytes through the decoders and the conversion
// to RGB: no panic, no image over the limit, only the two output types.
func FuzzDecode(f *testing.F) {
	img := testImage(9, 7, 2)
	for _, format := range []string{"png", "jpeg", "gif", "bmp", "tiff"} {
		f.Add(encode(f, format, img))
	}
	f.Add(encode(f, "png", image.NewGray16(image.Rect(0, 0, 3, 5))))
	f.Add(webpLossless(f, image.NewNRGBA(image.Rect(0, 0, 4, 4))))
	f.Add(cmykJPEG(f, image.NewCMYK(image.Rect(0, 0, 8, 8))))
	f.Add(pngWithSize(f, 1<<20, 1<<20))
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		d := decoder{maxPixels: limit}
		img, err := d.decodeBytes(data)
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Dx()*b.Dy() > limit || b.Dx() <= 0 || b.Dy() <= 0 {
			t.Fatalf("decoded %v over the limit", b)
		}
		switch m := img.(type) {
		case *image.Gray:
		case *image.RGBA:
			if !m.Opaque() {
				t.Fatal("RGBA with alpha")
			}
		default:
			t.Fatalf("decoded %T", img)
		}
	})
}
