package cifar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// Fixtures for the tests, all generated here: CIFAR-10 archives in both
// versions, with a pickle writer that emits the opcodes of Python 2's
// cPickle and of Python 3's newer protocols.

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

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
	if format == FormatBinary {
		dir = "cifar-10-batches-bin"
		files["batches.meta.txt"] = []byte(strings.Join(cifarClasses, "\n") + "\n\n")
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
			if format == FormatBinary {
				names = append(names, "batches.meta.txt")
			} else {
				names = append(names, "batches.meta")
			}
		case recs[o] == nil:
		case format == FormatBinary:
			files[o+".bin"] = binaryBatch(recs[o])
			names = append(names, o+".bin")
		default:
			files[o] = pythonBatch(proto, o, recs[o])
			names = append(names, o)
		}
	}
	return dir, names, files
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
	fixtures.WriteFile(t, path, buf.Bytes())
}
