package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// DType is a NumPy array-protocol type string ("descr").
type DType string

// The element types a cache uses, all little-endian.
const (
	Float32 DType = "<f4"
	Int32   DType = "<i4"
	Float16 DType = "<f2"
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float16:
		return 2
	}
	return 0
}

// npyMagic starts every .npy file.
const npyMagic = "\x93NUMPY"

// npyAlign is the alignment of the data that follows the header. NumPy pads
// to 64 too; it makes memory-mapped float32 and float16 rows aligned.
const npyAlign = 64

// maxHeaderLen bounds what ParseHeader accepts: NumPy itself refuses headers
// over 10 kB unless told otherwise, and ours are under 128 bytes.
const maxHeaderLen = 1 << 16

// maxDims bounds the rank ParseHeader accepts (NumPy's limit is 64).
const maxDims = 32

// ErrNotNpy is wrapped by errors about files that are not .npy files.
var ErrNotNpy = errors.New("cache: not a NumPy .npy file")

// npyHeader is the parsed header of an .npy file.
type npyHeader struct {
	DType        DType
	FortranOrder bool
	Shape        []int
	// DataOffset is the byte offset at which the array data starts.
	DataOffset int64
}

// Len is the number of elements, the product of Shape (1 for a scalar).
func (h npyHeader) Len() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// encodeNpyHeader returns the version 1.0 header for a C-order array of dtype
// and shape, padded with spaces so that the data starts at a multiple of 64
// bytes.
func encodeNpyHeader(dtype DType, shape []int) []byte {
	b, _ := encodeHeader(dtype, shape, 0)
	return b
}

// encodeHeader is encodeNpyHeader padded to total bytes when total > 0, which
// keeps the data offset of an existing file when its first dimension
// changes. It reports false when the header does not fit in total.
func encodeHeader(dtype DType, shape []int, total int) ([]byte, bool) {
	var dims strings.Builder
	for i, d := range shape {
		if i > 0 {
			dims.WriteString(", ")
		}
		dims.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		dims.WriteString(",")
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", dtype, dims.String())
	// magic(6) + version(2) + length(2) + dict + padding + '\n'
	need := 10 + len(dict) + 1
	if total <= 0 {
		total = (need + npyAlign - 1) / npyAlign * npyAlign
	}
	if need > total || total-10 > math.MaxUint16 {
		return nil, false
	}
	b := make([]byte, 0, total)
	b = append(b, npyMagic...)
	b = append(b, 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(total-10))
	b = append(b, dict...)
	for len(b) < total-1 {
		b = append(b, ' ')
	}
	return append(b, '\n'), true
}

// readNpyHeader reads and parses an .npy header from r, which must be at the
// start of the file. It accepts format versions 1.0, 2.0 and 3.0.
func readNpyHeader(r io.Reader) (npyHeader, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return npyHeader{}, fmt.Errorf("%w: %v", ErrNotNpy, err)
	}
	if string(pre[:6]) != npyMagic {
		return npyHeader{}, fmt.Errorf("%w: bad magic", ErrNotNpy)
	}
	major := pre[6]
	var n, lenSize int
	switch major {
	case 1:
		lenSize = 2
	case 2, 3:
		lenSize = 4
	default:
		return npyHeader{}, fmt.Errorf("%w: unsupported format version %d.%d", ErrNotNpy, pre[6], pre[7])
	}
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:lenSize]); err != nil {
		return npyHeader{}, fmt.Errorf("%w: header length: %v", ErrNotNpy, err)
	}
	if lenSize == 2 {
		n = int(binary.LittleEndian.Uint16(lb[:2]))
	} else {
		n64 := binary.LittleEndian.Uint32(lb[:])
		if n64 > maxHeaderLen {
			return npyHeader{}, fmt.Errorf("%w: header of %d bytes is too long", ErrNotNpy, n64)
		}
		n = int(n64)
	}
	if n > maxHeaderLen {
		return npyHeader{}, fmt.Errorf("%w: header of %d bytes is too long", ErrNotNpy, n)
	}
	dict := make([]byte, n)
	if _, err := io.ReadFull(r, dict); err != nil {
		return npyHeader{}, fmt.Errorf("%w: header truncated: %v", ErrNotNpy, err)
	}
	h, err := parseHeaderDict(string(dict))
	if err != nil {
		return npyHeader{}, fmt.Errorf("%w: header: %v", ErrNotNpy, err)
	}
	h.DataOffset = int64(6 + 2 + lenSize + n)
	return h, nil
}

// parseHeaderDict parses the Python dict literal of an .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (10, 512), }.
// It is a small recursive-descent parser for exactly the literals NumPy
// writes (strings, True/False, tuples of integers), not a Python evaluator.
func parseHeaderDict(s string) (npyHeader, error) {
	p := &dictParser{s: s}
	var h npyHeader
	seen := map[string]bool{}
	p.space()
	if !p.eat('{') {
		return h, errors.New("want '{'")
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("key %q repeated", key)
		}
		seen[key] = true
		p.space()
		if !p.eat(':') {
			return h, fmt.Errorf("want ':' after %q", key)
		}
		p.space()
		switch key {
		case "descr":
			d, err := p.str()
			if err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
			h.DType = DType(d)
		case "fortran_order":
			b, err := p.boolean()
			if err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
			h.FortranOrder = b
		case "shape":
			shape, err := p.tuple()
			if err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
			h.Shape = shape
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if p.eat('}') {
			break
		}
		return h, fmt.Errorf("want ',' or '}' at byte %d", p.i)
	}
	if strings.TrimRight(s[p.i:], " \t\r\n\x00") != "" {
		return h, fmt.Errorf("trailing bytes after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	// The element count times the largest element size must fit in an int64
	// so that callers can compute file sizes without overflow.
	total := int64(1)
	for _, d := range h.Shape {
		if d != 0 && total > math.MaxInt64/16/int64(d) {
			return h, fmt.Errorf("shape %v is too large", h.Shape)
		}
		total *= int64(d)
	}
	return h, nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str parses a quoted string without escapes (NumPy's keys and descrs have
// none).
func (p *dictParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("want a quoted string at byte %d", p.i)
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", errors.New("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

func (p *dictParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, fmt.Errorf("want True or False at byte %d", p.i)
}

// tuple parses "(a, b, )", "(a,)" or "()".
func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("want '(' at byte %d", p.i)
	}
	shape := []int{}
	for {
		p.space()
		if p.eat(')') {
			return shape, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if start == p.i {
			return nil, fmt.Errorf("want a non-negative integer at byte %d", p.i)
		}
		d, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil || d > math.MaxInt32*int64(1<<20) {
			return nil, fmt.Errorf("dimension %q out of range", p.s[start:p.i])
		}
		p.eat('L') // Python 2 long literals
		if len(shape) == maxDims {
			return nil, fmt.Errorf("more than %d dimensions", maxDims)
		}
		shape = append(shape, int(d))
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat(')') {
			return nil, fmt.Errorf("want ',' or ')' at byte %d", p.i)
		}
		if len(shape) == 1 {
			return nil, errors.New("(n) is not a tuple")
		}
		return shape, nil
	}
}
