package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // registered decoders: what a Source lists, it can decode
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"

	"github.com/tlearn/tlearn/internal/fsutil"
	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// maxFileBytes bounds what is read into memory for one image; no real
// image under the pixel limit needs more.
const maxFileBytes = 1 << 30

var (
	// ErrTooLarge is wrapped by a *DecodeError for an image over the pixel
	// limit (Settings.MaxPixels).
	ErrTooLarge = errors.New("dataset: image over the pixel limit")
	// ErrEmptyFile is wrapped by a *DecodeError for a zero-byte file.
	ErrEmptyFile = errors.New("dataset: empty file")
	// ErrNotImage is wrapped by a *DecodeError for a file that is none of
	// the decoded formats (JPEG, PNG, GIF, BMP, TIFF, WebP).
	ErrNotImage = errors.New("dataset: not a JPEG, PNG, GIF, BMP, TIFF or WebP image")
)

// DecodeError is an image that cannot be used: unreadable, empty, not an
// image, corrupt or truncated, or over the pixel limit. Path names the file.
type DecodeError struct {
	Path string
	Err  error
}

func (e *DecodeError) Error() string { return "dataset: decode " + e.Path + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeFile decodes the image at path into RGB at its own size: an
// *image.Gray for grayscale images, otherwise an *image.RGBA whose alpha is
// 255 everywhere. Paletted, 16-bit (high byte kept), CMYK and YCbCr images
// are converted; alpha is dropped, keeping the straight (un-premultiplied)
// colour as PIL's convert("RGB") does, so a transparent pixel shows the
// colour the file stores for it (black where the decoder keeps only
// premultiplied colour, e.g. GIF transparency). maxPixels <= 0 means
// DefaultMaxPixels. Every failure is a *DecodeError.
func DecodeFile(path string, maxPixels int) (image.Image, error) {
	d := decoder{maxPixels: Settings{MaxPixels: maxPixels}.maxPixels()}
	return d.decodeFile(path)
}

// decoder holds one worker's scratch buffers, reused from image to image.
// An image it returns may live in that scratch: it is valid until the next
// call.
type decoder struct {
	maxPixels int
	file      bytes.Buffer
	rgba      []uint8
}

// decodeItem decodes item i of s: the file, or the object of a Source in
// object storage. An object that is gone, too large or no image is a
// *DecodeError, as a file is; an object that cannot be read (network,
// credentials, a cancelled ctx) is a plain error, which stops a run that
// skips bad images instead of dropping a good one.
func (d *decoder) decodeItem(ctx context.Context, s *Source, i int) (image.Image, error) {
	if s.store == nil {
		return d.decodeFile(s.Path(i))
	}
	path, it := s.Path(i), s.Items[i]
	if it.Size > maxFileBytes {
		return nil, &DecodeError{Path: path, Err: fmt.Errorf("%d bytes, more than the %d read for one image", it.Size, maxFileBytes)}
	}
	n, err := readObject(ctx, s.store, it.Path, it.Size, maxFileBytes, &d.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &DecodeError{Path: path, Err: err}
	case err != nil:
		return nil, fmt.Errorf("dataset: read %s: %w", path, err)
	case n > maxFileBytes:
		return nil, &DecodeError{Path: path, Err: fmt.Errorf("more than the %d bytes read for one image", maxFileBytes)}
	}
	img, err := d.decodeBytes(d.file.Bytes())
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	return img, nil
}

func (d *decoder) decodeFile(path string) (image.Image, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	if fi.Size() > maxFileBytes {
		return nil, &DecodeError{Path: path, Err: fmt.Errorf("%d bytes, more than the %d read for one image", fi.Size(), maxFileBytes)}
	}
	d.file.Reset()
	d.file.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := d.file.ReadFrom(io.LimitReader(f, maxFileBytes+1)); err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	img, err := d.decodeBytes(d.file.Bytes())
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	return img, nil
}

// decodeBytes decodes and converts one image. Decoders of outside bytes
// have panicked on crafted input before; a panic here is a bad image, not a
// crashed run.
func (d *decoder) decodeBytes(data []byte) (img image.Image, err error) {
	if len(data) == 0 {
		return nil, ErrEmptyFile
	}
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("decoder failed: %v", r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, ErrNotImage
		}
		return nil, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%s image of %d×%d pixels", format, cfg.Width, cfg.Height)
	}
	limit := d.maxPixels
	if limit <= 0 { // a Source built without Open
		limit = DefaultMaxPixels
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(limit) {
		return nil, fmt.Errorf("%s image of %d×%d pixels, more than %d: %w", format, cfg.Width, cfg.Height, limit, ErrTooLarge)
	}
	img, _, err = image.Decode(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("truncated %s: %w", format, err)
		}
		return nil, fmt.Errorf("corrupt or truncated %s: %w", format, err)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("corrupt %s: header says %d×%d, image is %d×%d", format, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}
	return d.toRGB(img), nil
}

// scratchRGBA returns an RGBA image of w×h backed by the decoder's scratch.
func (d *decoder) scratchRGBA(w, h int) *image.RGBA {
	n := 4 * w * h
	if cap(d.rgba) < n {
		d.rgba = make([]uint8, n)
	}
	return &image.RGBA{Pix: d.rgba[:n], Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
}

// toRGB brings every decoded type to *image.Gray or opaque *image.RGBA, the
// two types the resizer and Preprocess walk fastest. JPEG's YCbCr is
// converted here too: nfnt/resize would resize it in YCbCr and subsample the
// chroma of the result again, where PIL resizes full RGB. Each type that Go's
// decoders return has a fast path that walks Pix; the At path is the
// fallback.
func (d *decoder) toRGB(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.Gray:
		return m
	case *image.Gray16:
		return grayFromGray16(m)
	case *image.RGBA:
		if m.Opaque() {
			return m
		}
	}
	b := img.Bounds()
	out := d.scratchRGBA(b.Dx(), b.Dy())
	switch m := img.(type) {
	case *image.RGBA:
		rgbFromRGBA(out, m)
	case *image.YCbCr:
		draw.Draw(out, out.Rect, m, b.Min, draw.Src)
	case *image.NYCbCrA:
		draw.Draw(out, out.Rect, &m.YCbCr, b.Min, draw.Src)
	case *image.NRGBA:
		rgbFromNRGBA(out, m)
	case *image.Paletted:
		rgbFromPaletted(out, m)
	case *image.CMYK:
		rgbFromCMYK(out, m)
	case *image.NRGBA64:
		rgbFromNRGBA64(out, m)
	default:
		// RGBA64, Alpha, Gray16-with-alpha variants and anything a future
		// decoder returns: slow, but correct.
		rgbFromAny(out, img)
	}
	return out
}

// The rgbFrom functions fill out, an opaque RGBA image of m's size at the
// origin, with m's straight (not premultiplied) colours.

func rgbFromRGBA(out *image.RGBA, m *image.RGBA) {
	b := m.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
		dst := out.Pix[y*out.Stride:][:4*w]
		for x := 0; x < 4*w; x += 4 {
			r, g, bl := unpremultiply(src[x], src[x+1], src[x+2], src[x+3])
			dst[x], dst[x+1], dst[x+2], dst[x+3] = r, g, bl, 0xff
		}
	}
}

func rgbFromNRGBA(out *image.RGBA, m *image.NRGBA) {
	b := m.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
		dst := out.Pix[y*out.Stride:][:4*w]
		for x := 0; x < 4*w; x += 4 {
			dst[x], dst[x+1], dst[x+2], dst[x+3] = src[x], src[x+1], src[x+2], 0xff
		}
	}
}

func rgbFromPaletted(out *image.RGBA, m *image.Paletted) {
	var lut [256][3]uint8 // indices past the palette stay black
	for i, c := range m.Palette {
		if i == len(lut) {
			break
		}
		if c == nil {
			continue
		}
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		lut[i] = [3]uint8{n.R, n.G, n.B}
	}
	b := m.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
		dst := out.Pix[y*out.Stride:][:4*w]
		for x, p := range src {
			c := &lut[p]
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = c[0], c[1], c[2], 0xff
		}
	}
}

func rgbFromCMYK(out *image.RGBA, m *image.CMYK) {
	b := m.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
		dst := out.Pix[y*out.Stride:][:4*w]
		for x := 0; x < 4*w; x += 4 {
			r, g, bl := color.CMYKToRGB(src[x], src[x+1], src[x+2], src[x+3])
			dst[x], dst[x+1], dst[x+2], dst[x+3] = r, g, bl, 0xff
		}
	}
}

// rgbFromNRGBA64 keeps the high byte of each 16-bit channel.
func rgbFromNRGBA64(out *image.RGBA, m *image.NRGBA64) {
	b := m.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:8*w]
		dst := out.Pix[y*out.Stride:][:4*w]
		for x := 0; x < w; x++ {
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = src[8*x], src[8*x+2], src[8*x+4], 0xff
		}
	}
}

func rgbFromAny(out *image.RGBA, img image.Image) {
	b := img.Bounds()
	w := b.Dx()
	for y := 0; y < b.Dy(); y++ {
		dst := out.Pix[y*out.Stride:][:4*w]
		for x := 0; x < w; x++ {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8), 0xff
		}
	}
}

// grayFromGray16 keeps the high byte of each pixel, in a new image (the
// scratch buffer is RGBA).
func grayFromGray16(m *image.Gray16) *image.Gray {
	b := m.Bounds()
	w := b.Dx()
	out := image.NewGray(image.Rect(0, 0, w, b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
		dst := out.Pix[y*out.Stride:][:w]
		for x := range dst {
			dst[x] = src[2*x] // big-endian: the high byte first
		}
	}
	return out
}

// unpremultiply returns the straight colour of a premultiplied 8-bit pixel,
// as color.NRGBAModel computes it.
func unpremultiply(r, g, b, a uint8) (uint8, uint8, uint8) {
	switch a {
	case 0xff:
		return r, g, b
	case 0:
		return 0, 0, 0
	}
	n := color.NRGBAModel.Convert(color.RGBA{R: r, G: g, B: b, A: a}).(color.NRGBA)
	return n.R, n.G, n.B
}
