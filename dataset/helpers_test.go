package dataset

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Fixtures for the tests, all generated here: images in every format, CIFAR
// archives in both versions (with a pickle writer that emits the opcodes of
// Python 2's cPickle and of Python 3's newer protocols) and IDX files.

// testImage is a w×h NRGBA image whose pixels differ from each other.
func testImage(w, h int, seed uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x*37) + seed, G: uint8(y*59) + 2*seed, B: uint8((x+y)*23) ^ seed, A: 0xff})
		}
	}
	return img
}

func encode(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	case "tiff":
		err = tiff.Encode(&buf, img, nil)
	default:
		t.Fatalf("no encoder for %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeDataset writes PNGs: files maps relative paths to image sizes.
func makeDataset(t testing.TB, files map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	i := 0
	for rel, size := range files {
		i++
		fixtures.WriteFile(t, filepath.Join(dir, rel), encode(t, "png", testImage(size, size, uint8(i))))
	}
	return dir
}

// webpLossless encodes img as a WebP (VP8L) without transforms, using a
// "simple" prefix code per channel, so each channel may take at most two
// values in the whole image.
func webpLossless(t testing.TB, img *image.NRGBA) []byte {
	t.Helper()
	b := img.Bounds()
	var vals [4][]uint8 // per channel G, R, B, A: the distinct values
	chans := func(c color.NRGBA) [4]uint8 { return [4]uint8{c.G, c.R, c.B, c.A} }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			for k, v := range chans(img.NRGBAAt(x, y)) {
				found := false
				for _, u := range vals[k] {
					found = found || u == v
				}
				if !found {
					vals[k] = append(vals[k], v)
				}
			}
		}
	}
	var bw bitWriter
	bw.write(0x2f, 8)
	bw.write(uint32(b.Dx()-1), 14)
	bw.write(uint32(b.Dy()-1), 14)
	bw.write(1, 1) // alpha hint
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for k := range 5 {
		v := []uint8{0}
		if k < 4 {
			v = vals[k]
		}
		if len(v) > 2 {
			t.Fatalf("webp fixture: channel %d has %d values, at most 2 allowed", k, len(v))
		}
		bw.write(1, 1) // simple code
		bw.write(uint32(len(v)-1), 1)
		bw.write(1, 1) // first symbol in 8 bits
		bw.write(uint32(v[0]), 8)
		if len(v) == 2 {
			bw.write(uint32(v[1]), 8)
		}
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			for k, v := range chans(img.NRGBAAt(x, y)) {
				if len(vals[k]) == 2 {
					code := uint32(0)
					if v == vals[k][1] {
						code = 1
					}
					bw.write(code, 1)
				}
			}
		}
	}
	data := bw.bytes()
	chunk := append([]byte("VP8L"), le32(uint32(len(data)))...)
	chunk = append(chunk, data...)
	if len(data)%2 == 1 {
		chunk = append(chunk, 0)
	}
	out := append([]byte("RIFF"), le32(uint32(4+len(chunk)))...)
	out = append(out, "WEBP"...)
	return append(out, chunk...)
}

type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.buf, byte(w.acc))
	}
	return w.buf
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// cmykJPEG builds an Adobe CMYK JPEG (as Photoshop writes them) from four
// grayscale JPEGs that Go encodes: one frame of four components, one
// non-interleaved scan per component, the Adobe APP14 marker with transform
// 0 and inverted values (255 means no ink).
func cmykJPEG(t testing.TB, img *image.CMYK) []byte {
	t.Helper()
	b := img.Bounds()
	var dqt, dht []byte
	var scans [4][]byte
	for k := range 4 {
		g := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g.Pix[g.PixOffset(x, y)] = 255 - img.Pix[img.PixOffset(x, y)+k]
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, g, &jpeg.Options{Quality: 100}); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		for p := 2; p < len(data); {
			if data[p] != 0xff {
				t.Fatalf("cmyk fixture: no marker at %d", p)
			}
			marker := data[p+1]
			n := int(binary.BigEndian.Uint16(data[p+2:]))
			seg := data[p : p+2+n]
			switch marker {
			case 0xdb:
				dqt = append([]byte(nil), seg...)
			case 0xc4:
				dht = append([]byte(nil), seg...)
			case 0xda:
				end := bytes.LastIndex(data, []byte{0xff, 0xd9})
				scans[k] = append([]byte(nil), data[p+2+n:end]...)
			}
			if marker == 0xda {
				break
			}
			p += 2 + n
		}
	}
	out := []byte{0xff, 0xd8}
	out = append(out, 0xff, 0xee, 0, 14)
	out = append(out, "Adobe"...)
	out = append(out, 0, 100, 0, 0, 0, 0, 0) // version 100, flags, transform 0 (CMYK)
	out = append(out, dqt...)
	out = append(out, 0xff, 0xc0, 0, 8+3*4, 8)
	out = binary.BigEndian.AppendUint16(out, uint16(b.Dy()))
	out = binary.BigEndian.AppendUint16(out, uint16(b.Dx()))
	out = append(out, 4)
	for k := range 4 {
		out = append(out, byte(k+1), 0x11, 0)
	}
	out = append(out, dht...)
	for k := range 4 {
		out = append(out, 0xff, 0xda, 0, 8, 1, byte(k+1), 0x00, 0, 63, 0)
		out = append(out, scans[k]...)
	}
	return append(out, 0xff, 0xd9)
}

// pngWithSize rewrites a PNG's IHDR to claim w×h pixels (a decompression
// bomb's header) and fixes the chunk CRC.
func pngWithSize(t testing.TB, w, h uint32) []byte {
	data := encode(t, "png", testImage(2, 2, 0))
	// 8-byte signature, then IHDR: length(4) "IHDR" width height ...
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	return data
}
