package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Fixtures for the tests, all generated here: images in every format, CIFAR
// archives in both versions (with a pickle writer that emits the opcodes of
// Python 2's cPickle and of Python 3's newer protocols) and IDX files.

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

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

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeDataset writes PNGs: files maps relative paths to image sizes.
func makeDataset(t testing.TB, files map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	i := 0
	for rel, size := range files {
		i++
		writeFile(t, filepath.Join(dir, rel), encode(t, "png", testImage(size, size, uint8(i))))
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

// pickler writes pickle opcodes.
type pickler struct {
	bytes.Buffer
	proto int
	memo  int
}

func (p *pickler) put() {
	if p.proto >= 4 {
		p.WriteByte(0x94) // MEMOIZE
		return
	}
	if p.memo < 256 {
		p.Write([]byte{'q', byte(p.memo)})
	} else {
		p.WriteByte('r')
		p.Write(le32(uint32(p.memo)))
	}
	p.memo++
}

func (p *pickler) int(n int) {
	switch {
	case n >= 0 && n < 256:
		p.Write([]byte{'K', byte(n)})
	case n >= 0 && n < 65536:
		p.Write([]byte{'M', byte(n), byte(n >> 8)})
	default:
		p.WriteByte('J')
		p.Write(le32(uint32(int32(n))))
	}
}

// bytesVal writes a Python 2 str (protocol 2) or Python 3 bytes.
func (p *pickler) bytesVal(b []byte) {
	op := [2]byte{'U', 'T'} // SHORT_BINSTRING, BINSTRING
	if p.proto >= 3 {
		op = [2]byte{'C', 'B'} // SHORT_BINBYTES, BINBYTES
	}
	if len(b) < 256 {
		p.Write([]byte{op[0], byte(len(b))})
	} else {
		p.WriteByte(op[1])
		p.Write(le32(uint32(len(b))))
	}
	p.Write(b)
	p.put()
}

// text writes a str: bytes in Python 2, unicode from protocol 3 on.
func (p *pickler) text(s string) {
	if p.proto < 3 {
		p.bytesVal([]byte(s))
		return
	}
	if len(s) < 256 && p.proto >= 4 {
		p.Write([]byte{0x8c, byte(len(s))})
	} else {
		p.WriteByte('X')
		p.Write(le32(uint32(len(s))))
	}
	p.WriteString(s)
	p.put()
}

func (p *pickler) global(mod, name string) {
	if p.proto >= 4 {
		p.text(mod)
		p.text(name)
		p.WriteByte(0x93)
	} else {
		p.WriteString("c" + mod + "\n" + name + "\n")
	}
	p.put()
}

// list writes items in batches of 1000 as cPickle does.
func (p *pickler) list(n int, item func(i int)) {
	p.WriteByte(']')
	p.put()
	for start := 0; start < n; start += 1000 {
		end := min(start+1000, n)
		if end-start == 1 {
			item(start)
			p.WriteByte('a')
			continue
		}
		p.WriteByte('(')
		for i := start; i < end; i++ {
			item(i)
		}
		p.WriteByte('e')
	}
}

// dtype writes numpy.dtype(typestr) with its state.
func (p *pickler) dtype(typestr string, order byte) {
	p.global("numpy", "dtype")
	p.text(typestr)
	p.int(0)
	p.int(1)
	p.WriteByte(0x87) // TUPLE3
	p.WriteByte('R')
	p.put()
	p.WriteByte('(')
	p.int(3)
	p.text(string(order))
	p.Write([]byte("NNN"))
	p.int(-1)
	p.int(-1)
	p.int(0)
	p.WriteByte('t')
	p.put()
	p.WriteByte('b')
}

// ndarray writes a C-order array the way NumPy reduces it: _reconstruct +
// BUILD up to protocol 4, _frombuffer with an in-band bytearray under 5.
func (p *pickler) ndarray(shape []int, typestr string, order byte, data []byte) {
	if p.proto >= 5 {
		p.global("numpy.core.numeric", "_frombuffer")
		p.WriteByte('(')
		p.WriteByte(0x96)
		p.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(data))))
		p.Write(data)
		p.put()
		p.dtype(typestr, order)
		p.WriteByte('(')
		for _, d := range shape {
			p.int(d)
		}
		p.WriteByte('t')
		p.text("C")
		p.WriteByte('t')
		p.WriteByte('R')
		p.put()
		return
	}
	p.global("numpy.core.multiarray", "_reconstruct")
	p.global("numpy", "ndarray")
	p.int(0)
	p.WriteByte(0x85) // TUPLE1
	p.bytesVal([]byte("b"))
	p.WriteByte(0x87)
	p.WriteByte('R')
	p.put()
	p.WriteByte('(')
	p.int(1)
	p.WriteByte('(')
	for _, d := range shape {
		p.int(d)
	}
	p.WriteByte('t')
	p.dtype(typestr, order)
	p.WriteByte(0x89) // NEWFALSE: C order
	p.bytesVal(data)
	p.WriteByte('t')
	p.put()
	p.WriteByte('b')
}

// dict writes a dict whose keys are written by key and values by vals.
func (p *pickler) dict(keys []string, vals []func()) {
	p.WriteByte('}')
	p.put()
	p.WriteByte('(')
	for i, k := range keys {
		if p.proto >= 3 {
			p.bytesVal([]byte(k)) // CIFAR's keys are bytes under Python 3 too
		} else {
			p.text(k)
		}
		vals[i]()
	}
	p.WriteByte('u')
}

func (p *pickler) begin() {
	p.Write([]byte{0x80, byte(p.proto)})
	if p.proto >= 4 {
		p.WriteByte(0x95) // FRAME: a length hint, not checked by readers
		p.Write(make([]byte, 8))
	}
}

// cifarRec is one fake CIFAR-10 image.
type cifarRec struct {
	label uint8
	name  string
	pix   []byte // 3072 planar bytes
}

func fakeCIFAR(batches, perBatch, classes int) map[string][]cifarRec {
	out := map[string][]cifarRec{}
	names := append(append([]string(nil), cifarTrainBatches[:batches]...), cifarTestBatch)
	k := 0
	for bi, b := range names {
		for i := range perBatch {
			r := cifarRec{label: uint8((i*7 + bi) % classes), name: "img_" + string(rune('a'+bi)) + "_" + strconv.Itoa(i) + ".png", pix: make([]byte, cifarPixels)}
			for p := range r.pix {
				r.pix[p] = uint8(p*3 + k*11)
			}
			k++
			out[b] = append(out[b], r)
		}
	}
	return out
}

// pythonBatch pickles one batch as the python version stores it.
func pythonBatch(proto int, batch string, recs []cifarRec) []byte {
	p := &pickler{proto: proto}
	p.begin()
	data := make([]byte, 0, len(recs)*cifarPixels)
	for _, r := range recs {
		data = append(data, r.pix...)
	}
	p.dict([]string{"data", "labels", "batch_label", "filenames"}, []func(){
		func() { p.ndarray([]int{len(recs), cifarPixels}, "u1", '|', data) },
		func() { p.list(len(recs), func(i int) { p.int(int(recs[i].label)) }) },
		func() { p.bytesVal([]byte(batch + " of 5")) },
		func() { p.list(len(recs), func(i int) { p.bytesVal([]byte(recs[i].name)) }) },
	})
	p.WriteByte('.')
	return p.Bytes()
}

func pythonMeta(proto int, classes []string) []byte {
	p := &pickler{proto: proto}
	p.begin()
	p.dict([]string{"num_cases_per_batch", "label_names", "num_vis"}, []func(){
		func() { p.int(10000) },
		func() { p.list(len(classes), func(i int) { p.bytesVal([]byte(classes[i])) }) },
		func() { p.int(cifarPixels) },
	})
	p.WriteByte('.')
	return p.Bytes()
}

func binaryBatch(recs []cifarRec) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, r.label)
		out = append(out, r.pix...)
	}
	return out
}

var cifarClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// cifarFiles returns the files of one CIFAR version, in the shuffled order
// of the real archives.
func cifarFiles(format string, proto int, recs map[string][]cifarRec) (dir string, names []string, files map[string][]byte) {
	files = map[string][]byte{}
	order := []string{"data_batch_4", "readme.html", "test_batch", "data_batch_3", "meta", "data_batch_2", "data_batch_5", "data_batch_1"}
	if format == FormatCIFAR10Binary {
		dir = "cifar-10-batches-bin"
		files["batches.meta.txt"] = []byte(join(cifarClasses, "\n") + "\n\n")
	} else {
		dir = "cifar-10-batches-py"
		files["batches.meta"] = pythonMeta(proto, cifarClasses)
	}
	for _, o := range order {
		switch {
		case o == "readme.html":
			files[o] = []byte("<html></html>")
			names = append(names, o)
		case o == "meta":
			if format == FormatCIFAR10Binary {
				names = append(names, "batches.meta.txt")
			} else {
				names = append(names, "batches.meta")
			}
		case recs[o] == nil:
		case format == FormatCIFAR10Binary:
			files[o+".bin"] = binaryBatch(recs[o])
			names = append(names, o+".bin")
		default:
			files[o] = pythonBatch(proto, o, recs[o])
			names = append(names, o)
		}
	}
	return dir, names, files
}

func join(s []string, sep string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(x)
	}
	return b.String()
}

// tarball writes files under dir/ into a tar (gzipped with gz) in order.
func tarball(t testing.TB, path, dir string, names []string, files map[string][]byte, gz bool) {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	if err := w.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		data := files[n]
		if err := w.WriteHeader(&tar.Header{Name: dir + "/" + n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, path, buf.Bytes())
}

// idxFile builds an IDX file of unsigned bytes.
func idxFile(dims []int, data []byte) []byte {
	out := []byte{0, 0, idxUnsignedByte, byte(len(dims))}
	for _, d := range dims {
		out = binary.BigEndian.AppendUint32(out, uint32(d))
	}
	return append(out, data...)
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recordProgress records what a conversion reports.
type recordProgress struct{ total, done int }

func (p *recordProgress) Total(n int) { p.total = n }
func (p *recordProgress) Add(n int)   { p.done += n }
