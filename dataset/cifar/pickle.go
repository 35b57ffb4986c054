package cifar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a small unpickler for what the CIFAR-10 python batches hold:
// dicts with bytes or str keys, lists of ints and strings, and NumPy arrays
// (numpy.core.multiarray._reconstruct + BUILD, as pickled by NumPy under
// protocol 2, or numpy.core.numeric._frombuffer under protocol 5, in-band).
// It reads the binary opcodes of protocols 2 to 5 (the batches are
// protocol 2, written by Python 2's cPickle) and no text-mode strings. It
// never calls anything: globals are recorded by name and interpreted only
// where an array is expected. Every length is checked against the input
// before use, so crafted input cannot make it allocate more than the input.

// Python values.
type (
	pyTuple  []any
	pyList   struct{ items []any }
	pyDict   struct{ keys, vals []any }
	pyBytes  []byte // Python 2 str, Python 3 bytes and bytearray
	pyGlobal struct{ module, name string }
	// pyObject is the result of calling fn(args...) (REDUCE, NEWOBJ),
	// with state set by BUILD.
	pyObject struct {
		fn    any
		args  pyTuple
		state any
	}
)

var errPickle = errors.New("not a valid pickle")

type unpickler struct {
	data   []byte
	pos    int
	stack  []any
	marks  []int
	memo   map[uint64]any
	done   bool // STOP was read
	result any  // what STOP popped
}

// unpickle decodes one pickled value.
func unpickle(data []byte) (v any, err error) {
	u := &unpickler{data: data, memo: map[uint64]any{}}
	return u.run()
}

func (u *unpickler) fail(op byte, format string, args ...any) error {
	return fmt.Errorf("pickle: opcode %q at byte %d: %s: %w", op, u.pos, fmt.Sprintf(format, args...), errPickle)
}

func (u *unpickler) read(n uint64) ([]byte, bool) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, false
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, true
}

func (u *unpickler) line() (string, bool) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", false
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, true
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, bool) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, false // never pop across a mark
	}
	v := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return v, true
}

func (u *unpickler) top() (any, bool) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, false
	}
	return u.stack[n-1], true
}

// popMark returns the items pushed since the last MARK and removes them.
func (u *unpickler) popMark() ([]any, bool) {
	if len(u.marks) == 0 {
		return nil, false
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, true
}

// memoKey reads the memo key of a PUT/GET-family opcode: a decimal line for
// the text form (textOp), else a 1-byte (byteOp) or 4-byte little-endian one.
func (u *unpickler) memoKey(op, textOp, byteOp byte) (uint64, error) {
	if op == textOp {
		s, ok := u.line()
		x, err := strconv.ParseUint(s, 10, 64)
		if !ok || err != nil {
			return 0, u.fail(op, "memo key %q", s)
		}
		return x, nil
	}
	size := 4
	if op == byteOp {
		size = 1
	}
	k, ok := u.length(size)
	if !ok {
		return 0, u.fail(op, "the data ends inside its memo key (truncated file?)")
	}
	return k, nil
}

// length reads a little-endian length of size bytes (1, 4 or 8).
func (u *unpickler) length(size int) (uint64, bool) {
	b, ok := u.read(uint64(size))
	if !ok {
		return 0, false
	}
	switch size {
	case 1:
		return uint64(b[0]), true
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), true
	}
	return binary.LittleEndian.Uint64(b), true
}

// opcodes maps each opcode this reader understands to its handler; a nil
// entry is refused. A handler reads the opcode's operands from the input
// and works on the stack, marks and memo; STOP ends the run.
var opcodes = [256]func(u *unpickler, op byte) error{
	0x80: (*unpickler).opProto, // PROTO
	0x95: (*unpickler).opFrame, // FRAME
	'.':  (*unpickler).opStop,  // STOP

	'(': (*unpickler).opMark,    // MARK
	'1': (*unpickler).opPopMark, // POP_MARK
	'0': (*unpickler).opPop,     // POP
	'2': (*unpickler).opDup,     // DUP

	'N':  (*unpickler).opEmpty, // NONE
	0x88: (*unpickler).opEmpty, // NEWTRUE
	0x89: (*unpickler).opEmpty, // NEWFALSE
	')':  (*unpickler).opEmpty, // EMPTY_TUPLE
	']':  (*unpickler).opEmpty, // EMPTY_LIST
	'}':  (*unpickler).opEmpty, // EMPTY_DICT
	0x8f: (*unpickler).opEmpty, // EMPTY_SET

	'J':  (*unpickler).opBinInt,  // BININT
	'K':  (*unpickler).opBinInt,  // BININT1
	'M':  (*unpickler).opBinInt,  // BININT2
	0x8a: (*unpickler).opLong,    // LONG1
	0x8b: (*unpickler).opLong,    // LONG4
	'I':  (*unpickler).opTextInt, // INT
	'G':  (*unpickler).opFloat,   // BINFLOAT

	'T':  (*unpickler).opBytes,   // BINSTRING
	'U':  (*unpickler).opBytes,   // SHORT_BINSTRING
	'B':  (*unpickler).opBytes,   // BINBYTES
	'C':  (*unpickler).opBytes,   // SHORT_BINBYTES
	0x8e: (*unpickler).opBytes,   // BINBYTES8
	0x96: (*unpickler).opBytes,   // BYTEARRAY8
	'X':  (*unpickler).opUnicode, // BINUNICODE
	0x8c: (*unpickler).opUnicode, // SHORT_BINUNICODE
	0x8d: (*unpickler).opUnicode, // BINUNICODE8

	't':  (*unpickler).opTuple,    // TUPLE
	0x85: (*unpickler).opTupleN,   // TUPLE1
	0x86: (*unpickler).opTupleN,   // TUPLE2
	0x87: (*unpickler).opTupleN,   // TUPLE3
	'l':  (*unpickler).opList,     // LIST
	0x91: (*unpickler).opList,     // FROZENSET: kept as a list
	'a':  (*unpickler).opAppend,   // APPEND
	'e':  (*unpickler).opAppends,  // APPENDS
	0x90: (*unpickler).opAppends,  // ADDITEMS
	'd':  (*unpickler).opDict,     // DICT
	's':  (*unpickler).opSetItem,  // SETITEM
	'u':  (*unpickler).opSetItems, // SETITEMS

	'c':  (*unpickler).opGlobal,      // GLOBAL
	0x93: (*unpickler).opStackGlobal, // STACK_GLOBAL
	'R':  (*unpickler).opReduce,      // REDUCE
	0x81: (*unpickler).opReduce,      // NEWOBJ
	0x92: (*unpickler).opNewObjEx,    // NEWOBJ_EX
	'b':  (*unpickler).opBuild,       // BUILD

	'q':  (*unpickler).opPut,     // BINPUT
	'r':  (*unpickler).opPut,     // LONG_BINPUT
	'p':  (*unpickler).opPut,     // PUT
	0x94: (*unpickler).opMemoize, // MEMOIZE
	'h':  (*unpickler).opGet,     // BINGET
	'j':  (*unpickler).opGet,     // LONG_BINGET
	'g':  (*unpickler).opGet,     // GET
}

// run interprets opcodes until STOP and returns the value it pops.
func (u *unpickler) run() (any, error) {
	for !u.done {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("pickle: ended at byte %d without STOP (truncated?): %w", u.pos, errPickle)
		}
		op := u.data[u.pos]
		u.pos++
		h := opcodes[op]
		if h == nil {
			return nil, u.fail(op, "not supported (this reader handles the binary pickles of protocols 2-5 that hold data, not code)")
		}
		if err := h(u, op); err != nil {
			return nil, err
		}
	}
	return u.result, nil
}

// operandSize is the byte size of the integer, or of the length prefix,
// that follows an opcode of the int, long and string families.
func operandSize(op byte) int {
	switch op {
	case 'K', 'U', 'C', 0x8c, 0x8a: // BININT1, SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE, LONG1
		return 1
	case 'M': // BININT2
		return 2
	case 0x8e, 0x96, 0x8d: // BINBYTES8, BYTEARRAY8, BINUNICODE8
		return 8
	}
	return 4 // BININT, LONG4, BINSTRING, BINBYTES, BINUNICODE
}

// short is the error of an operand cut off by the end of the data.
func (u *unpickler) short(op byte, what string) error {
	return u.fail(op, "the data ends inside its %s (truncated file?)", what)
}

func (u *unpickler) underflow(op byte) error { return u.fail(op, "stack underflow") }

func (u *unpickler) noMark(op byte) error { return u.fail(op, "no mark") }

// Framing and control.

func (u *unpickler) opProto(op byte) error {
	b, ok := u.read(1)
	if !ok {
		return u.short(op, "protocol")
	}
	if b[0] > 5 {
		return u.fail(op, "protocol %d", b[0])
	}
	return nil
}

// opFrame skips a frame's length, which is only a hint.
func (u *unpickler) opFrame(op byte) error {
	if _, ok := u.read(8); !ok {
		return u.short(op, "frame")
	}
	return nil
}

func (u *unpickler) opStop(op byte) error {
	v, ok := u.pop()
	if !ok {
		return u.underflow(op)
	}
	u.result, u.done = v, true
	return nil
}

// Stack and marks.

func (u *unpickler) opMark(byte) error {
	u.marks = append(u.marks, len(u.stack))
	return nil
}

func (u *unpickler) opPopMark(op byte) error {
	if _, ok := u.popMark(); !ok {
		return u.noMark(op)
	}
	return nil
}

// opPop drops the top item, or the mark and what follows it when nothing
// was pushed after it, as Python's unpickler does.
func (u *unpickler) opPop(op byte) error {
	if _, ok := u.pop(); !ok {
		if _, ok := u.popMark(); !ok {
			return u.underflow(op)
		}
	}
	return nil
}

func (u *unpickler) opDup(op byte) error {
	v, ok := u.top()
	if !ok {
		return u.underflow(op)
	}
	u.push(v)
	return nil
}

// opEmpty pushes a constant or a new empty container.
func (u *unpickler) opEmpty(op byte) error {
	switch op {
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case ')':
		u.push(pyTuple{})
	case ']', 0x8f: // an empty set is kept as a list: its order is irrelevant here
		u.push(&pyList{})
	case '}':
		u.push(&pyDict{})
	}
	return nil
}

// Numbers.

// opBinInt reads BININT (int32), BININT1 (uint8) or BININT2 (uint16).
func (u *unpickler) opBinInt(op byte) error {
	size := operandSize(op)
	b, ok := u.read(uint64(size))
	if !ok {
		return u.short(op, "int")
	}
	switch size {
	case 1:
		u.push(int64(b[0]))
	case 2:
		u.push(int64(binary.LittleEndian.Uint16(b)))
	default:
		u.push(int64(int32(binary.LittleEndian.Uint32(b))))
	}
	return nil
}

// opLong reads LONG1 or LONG4: a little-endian two's complement integer of
// up to 8 bytes.
func (u *unpickler) opLong(op byte) error {
	n, ok := u.length(operandSize(op))
	if !ok {
		return u.short(op, "long length")
	}
	if n > 8 {
		return u.fail(op, "integer of %d bytes, more than 64 bits", n)
	}
	b, ok := u.read(n)
	if !ok {
		return u.short(op, "long")
	}
	var x uint64
	for i := len(b) - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend
		x |= ^uint64(0) << (8 * n)
	}
	u.push(int64(x))
	return nil
}

// opTextInt reads INT, a decimal line; "I00" and "I01" are Python 2's
// False and True.
func (u *unpickler) opTextInt(op byte) error {
	s, ok := u.line()
	if !ok {
		return u.short(op, "int")
	}
	switch s {
	case "00":
		u.push(false)
	case "01":
		u.push(true)
	default:
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u.fail(op, "int %q", s)
		}
		u.push(x)
	}
	return nil
}

func (u *unpickler) opFloat(op byte) error {
	b, ok := u.read(8)
	if !ok {
		return u.short(op, "float")
	}
	u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	return nil
}

// Strings.

// opBytes reads a Python 2 str or a Python 3 bytes or bytearray.
func (u *unpickler) opBytes(op byte) error {
	n, ok := u.length(operandSize(op))
	if !ok {
		return u.short(op, "length")
	}
	if op == 'T' && n > math.MaxInt32 { // a signed length in Python 2
		return u.fail(op, "negative length")
	}
	b, ok := u.read(n)
	if !ok {
		return u.short(op, "bytes")
	}
	u.push(pyBytes(b))
	return nil
}

// opUnicode reads a UTF-8 str.
func (u *unpickler) opUnicode(op byte) error {
	n, ok := u.length(operandSize(op))
	if !ok {
		return u.short(op, "length")
	}
	b, ok := u.read(n)
	if !ok {
		return u.short(op, "string")
	}
	if !utf8.Valid(b) {
		return u.fail(op, "string is not UTF-8")
	}
	u.push(string(b))
	return nil
}

// Containers.

func (u *unpickler) opTuple(op byte) error {
	items, ok := u.popMark()
	if !ok {
		return u.noMark(op)
	}
	u.push(pyTuple(items))
	return nil
}

// opTupleN makes a tuple of the top 1 to 3 items (TUPLE1..3).
func (u *unpickler) opTupleN(op byte) error {
	n := int(op - 0x84)
	if len(u.stack) < n || (len(u.marks) > 0 && u.marks[len(u.marks)-1] > len(u.stack)-n) {
		return u.underflow(op)
	}
	t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	u.push(t)
	return nil
}

// opList makes a list (LIST) or a frozenset, kept as a list, of the items
// since the last mark.
func (u *unpickler) opList(op byte) error {
	items, ok := u.popMark()
	if !ok {
		return u.noMark(op)
	}
	u.push(&pyList{items: items})
	return nil
}

func (u *unpickler) opAppend(op byte) error {
	v, ok := u.pop()
	if !ok {
		return u.underflow(op)
	}
	l, ok := u.topList()
	if !ok {
		return u.fail(op, "append to a non-list")
	}
	l.items = append(l.items, v)
	return nil
}

// opAppends appends the items since the last mark to a list or set
// (APPENDS, ADDITEMS).
func (u *unpickler) opAppends(op byte) error {
	items, ok := u.popMark()
	if !ok {
		return u.noMark(op)
	}
	l, ok := u.topList()
	if !ok {
		return u.fail(op, "append to a non-list")
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) opDict(op byte) error {
	items, ok := u.popMark()
	if !ok || len(items)%2 != 0 {
		return u.fail(op, "no mark or odd item count")
	}
	d := &pyDict{}
	d.set(items)
	u.push(d)
	return nil
}

func (u *unpickler) opSetItem(op byte) error {
	v, ok1 := u.pop()
	k, ok2 := u.pop()
	if !ok1 || !ok2 {
		return u.underflow(op)
	}
	d, ok := u.topDict()
	if !ok {
		return u.fail(op, "set item of a non-dict")
	}
	d.set([]any{k, v})
	return nil
}

func (u *unpickler) opSetItems(op byte) error {
	items, ok := u.popMark()
	if !ok || len(items)%2 != 0 {
		return u.fail(op, "no mark or odd item count")
	}
	d, ok := u.topDict()
	if !ok {
		return u.fail(op, "set items of a non-dict")
	}
	d.set(items)
	return nil
}

// set appends alternating keys and values.
func (d *pyDict) set(kv []any) {
	for i := 0; i < len(kv); i += 2 {
		d.keys, d.vals = append(d.keys, kv[i]), append(d.vals, kv[i+1])
	}
}

// Objects: recorded, never called.

func (u *unpickler) opGlobal(op byte) error {
	mod, ok1 := u.line()
	name, ok2 := u.line()
	if !ok1 || !ok2 {
		return u.short(op, "global")
	}
	u.push(pyGlobal{mod, name})
	return nil
}

func (u *unpickler) opStackGlobal(op byte) error {
	name, ok1 := u.pop()
	mod, ok2 := u.pop()
	ms, ok3 := mod.(string)
	ns, ok4 := name.(string)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return u.fail(op, "want module and name strings")
	}
	u.push(pyGlobal{ms, ns})
	return nil
}

// opReduce records a call of a callable on an argument tuple (REDUCE,
// NEWOBJ).
func (u *unpickler) opReduce(op byte) error {
	a, ok1 := u.pop()
	fn, ok2 := u.pop()
	args, ok3 := a.(pyTuple)
	if !ok1 || !ok2 || !ok3 {
		return u.fail(op, "want a callable and an argument tuple")
	}
	u.push(&pyObject{fn: fn, args: args})
	return nil
}

// opNewObjEx is NEWOBJ with keyword arguments, which are dropped.
func (u *unpickler) opNewObjEx(op byte) error {
	_, ok0 := u.pop()
	a, ok1 := u.pop()
	fn, ok2 := u.pop()
	args, ok3 := a.(pyTuple)
	if !ok0 || !ok1 || !ok2 || !ok3 {
		return u.fail(op, "want a class, arguments and keywords")
	}
	u.push(&pyObject{fn: fn, args: args})
	return nil
}

func (u *unpickler) opBuild(op byte) error {
	state, ok := u.pop()
	if !ok {
		return u.underflow(op)
	}
	t, ok := u.top()
	obj, isObj := t.(*pyObject)
	if !ok || !isObj {
		return u.fail(op, "build of a non-object")
	}
	obj.state = state
	return nil
}

// The memo.

// opPut stores the top item under a key (BINPUT, LONG_BINPUT, PUT).
func (u *unpickler) opPut(op byte) error {
	key, err := u.memoKey(op, 'p', 'q')
	if err != nil {
		return err
	}
	v, ok := u.top()
	if !ok {
		return u.underflow(op)
	}
	u.memo[key] = v
	return nil
}

// opMemoize stores the top item under the next free key.
func (u *unpickler) opMemoize(op byte) error {
	v, ok := u.top()
	if !ok {
		return u.underflow(op)
	}
	u.memo[uint64(len(u.memo))] = v
	return nil
}

// opGet pushes a stored item (BINGET, LONG_BINGET, GET).
func (u *unpickler) opGet(op byte) error {
	key, err := u.memoKey(op, 'g', 'h')
	if err != nil {
		return err
	}
	v, ok := u.memo[key]
	if !ok {
		return u.fail(op, "memo key %d was never stored", key)
	}
	u.push(v)
	return nil
}

func (u *unpickler) topList() (*pyList, bool) {
	v, ok := u.top()
	if !ok {
		return nil, false
	}
	l, ok := v.(*pyList)
	return l, ok
}

func (u *unpickler) topDict() (*pyDict, bool) {
	v, ok := u.top()
	if !ok {
		return nil, false
	}
	d, ok := v.(*pyDict)
	return d, ok
}

// get looks a key up by its text; keys may be bytes (Python 2 str, or
// Python 3 bytes, which protocol 2 spells _codecs.encode(str, "latin1")) or
// str.
func (d *pyDict) get(key string) (any, bool) {
	for i, k := range d.keys {
		if s, ok := pyText(k); ok && s == key {
			return d.vals[i], true
		}
	}
	return nil, false
}

// pyText returns a str or bytes value as text (bytes are Latin-1 in Python
// 2 pickles of str; CIFAR's names are ASCII).
func pyText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case pyBytes:
		if utf8.Valid(v) {
			return string(v), true
		}
		r := make([]rune, len(v))
		for i, c := range v {
			r[i] = rune(c)
		}
		return string(r), true
	case *pyObject:
		if b, ok := codecsBytes(v); ok {
			return pyText(b)
		}
	}
	return "", false
}

// pyRawBytes returns the bytes of a bytes value, including Python 3's
// protocol-2 spelling _codecs.encode(str, "latin1").
func pyRawBytes(v any) ([]byte, bool) {
	switch v := v.(type) {
	case pyBytes:
		return v, true
	case *pyObject:
		if b, ok := codecsBytes(v); ok {
			return b, true
		}
	}
	return nil, false
}

func codecsBytes(o *pyObject) (pyBytes, bool) {
	g, ok := o.fn.(pyGlobal)
	if !ok || g.module != "_codecs" || g.name != "encode" || len(o.args) != 2 {
		return nil, false
	}
	s, ok1 := o.args[0].(string)
	enc, ok2 := o.args[1].(string)
	if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1") {
		return nil, false
	}
	b := make(pyBytes, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

func pyInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// ndarray is a NumPy array's description and bytes, as pickled.
type ndarray struct {
	kind     byte // 'u', 'i', 'b' or 'f'
	itemsize int
	big      bool // big-endian items
	shape    []int
	data     []byte
}

// toNDArray interprets a pickled NumPy array.
func toNDArray(v any) (*ndarray, error) {
	o, ok := v.(*pyObject)
	if !ok {
		return nil, fmt.Errorf("want a NumPy array, got %s", pyTypeName(v))
	}
	g, _ := o.fn.(pyGlobal)
	switch {
	case (g.module == "numpy.core.multiarray" || g.module == "numpy._core.multiarray") && g.name == "_reconstruct":
		// state: (version, shape, dtype, is_fortran, raw); NumPy before 1.0
		// wrote it without the version.
		st, ok := o.state.(pyTuple)
		if ok && len(st) == 5 {
			st = st[1:]
		}
		if !ok || len(st) != 4 {
			return nil, errors.New("NumPy array without the expected state (shape, dtype, order, data)")
		}
		fortran, _ := pyInt(st[2])
		return makeNDArray(st[0], st[1], fortran != 0, st[3])
	case (g.module == "numpy.core.numeric" || g.module == "numpy._core.numeric") && g.name == "_frombuffer":
		// args: (buffer, dtype, shape, order)
		if len(o.args) != 4 {
			return nil, errors.New("NumPy _frombuffer with unexpected arguments")
		}
		order, _ := pyText(o.args[3])
		return makeNDArray(o.args[2], o.args[1], order == "F", o.args[0])
	}
	return nil, fmt.Errorf("want a NumPy array, got a call of %s.%s", g.module, g.name)
}

func makeNDArray(shapeV, dtypeV any, fortran bool, dataV any) (*ndarray, error) {
	shapeT, ok := shapeV.(pyTuple)
	if !ok {
		return nil, errors.New("NumPy array shape is not a tuple")
	}
	a := &ndarray{}
	count := uint64(1)
	for _, d := range shapeT {
		n, ok := pyInt(d)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("NumPy array shape %v", shapeT)
		}
		a.shape = append(a.shape, int(n))
		count *= uint64(n)
		if count > math.MaxInt32*8 {
			return nil, fmt.Errorf("NumPy array shape %v is too large", a.shape)
		}
	}
	if err := a.setDtype(dtypeV); err != nil {
		return nil, err
	}
	if fortran && len(a.shape) > 1 {
		return nil, errors.New("NumPy array in Fortran order is not supported")
	}
	data, ok := pyRawBytes(dataV)
	if !ok {
		return nil, fmt.Errorf("NumPy array data is %s, want bytes", pyTypeName(dataV))
	}
	if uint64(len(data)) != count*uint64(a.itemsize) {
		return nil, fmt.Errorf("NumPy array of shape %v and %d-byte items has %d bytes of data", a.shape, a.itemsize, len(data))
	}
	a.data = data
	return a, nil
}

func (a *ndarray) setDtype(v any) error {
	o, ok := v.(*pyObject)
	g, _ := func() (pyGlobal, bool) {
		if !ok {
			return pyGlobal{}, false
		}
		g, ok := o.fn.(pyGlobal)
		return g, ok
	}()
	if !ok || g.name != "dtype" || (g.module != "numpy" && g.module != "numpy.core.multiarray" && g.module != "numpy._core.multiarray") || len(o.args) < 1 {
		return fmt.Errorf("NumPy dtype expected, got %s", pyTypeName(v))
	}
	ts, ok := pyText(o.args[0])
	if !ok {
		return errors.New("NumPy dtype without a type string")
	}
	order := byte('|')
	if len(ts) > 0 && strings.ContainsRune("<>|=", rune(ts[0])) {
		order, ts = ts[0], ts[1:]
	}
	if st, ok := o.state.(pyTuple); ok && len(st) > 1 {
		if s, ok := pyText(st[1]); ok && len(s) == 1 {
			order = s[0]
		}
	}
	if len(ts) < 2 || !strings.ContainsRune("uibf", rune(ts[0])) {
		return fmt.Errorf("NumPy dtype %q is not a number type", ts)
	}
	size, err := strconv.Atoi(ts[1:])
	if err != nil || (size != 1 && size != 2 && size != 4 && size != 8) {
		return fmt.Errorf("NumPy dtype %q", ts)
	}
	a.kind, a.itemsize, a.big = ts[0], size, order == '>'
	return nil
}

// ints returns the items of an integer array.
func (a *ndarray) ints() ([]int64, error) {
	if a.kind != 'u' && a.kind != 'i' && a.kind != 'b' {
		return nil, fmt.Errorf("NumPy array of kind %q, want integers", a.kind)
	}
	n := len(a.data) / a.itemsize
	out := make([]int64, n)
	var bo binary.ByteOrder = binary.LittleEndian
	if a.big {
		bo = binary.BigEndian
	}
	for i := range out {
		b := a.data[i*a.itemsize:]
		switch a.itemsize {
		case 1:
			out[i] = int64(b[0])
			if a.kind == 'i' {
				out[i] = int64(int8(b[0]))
			}
		case 2:
			out[i] = int64(bo.Uint16(b))
			if a.kind == 'i' {
				out[i] = int64(int16(bo.Uint16(b)))
			}
		case 4:
			out[i] = int64(bo.Uint32(b))
			if a.kind == 'i' {
				out[i] = int64(int32(bo.Uint32(b)))
			}
		case 8:
			out[i] = int64(bo.Uint64(b))
		}
	}
	return out, nil
}

func pyTypeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int64:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case pyBytes:
		return "bytes"
	case pyTuple:
		return "a tuple"
	case *pyList:
		return "a list"
	case *pyDict:
		return "a dict"
	case pyGlobal:
		return "the global " + v.module + "." + v.name
	case *pyObject:
		if g, ok := v.fn.(pyGlobal); ok {
			return "an object made by " + g.module + "." + g.name
		}
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
