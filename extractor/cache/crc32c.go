package cache

// crc32cCombine returns the CRC-32C of a‖b from crcA (of a), crcB (of b)
// and len(b), without reading the bytes again: merge checksums every byte
// once and derives from those sums both the shard chunk's (to check) and
// the merged chunk's (to record), whose bounds differ. It is zlib's
// crc32_combine (multiplication by x^(8·len(b)) modulo the polynomial) on
// the Castagnoli polynomial.
func crc32cCombine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA ^ crcB
	}
	return multModP(x2nModP(uint64(lenB), 3), crcA) ^ crcB
}

// castagnoliReversed is the Castagnoli polynomial, bit-reversed as the
// CRC is computed.
const castagnoliReversed = 0x82f63b78

// multModP is a(x)·b(x) modulo the polynomial, in the reversed bit order
// (x^0 is bit 31).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nTable[k] is x^(2^k) modulo the polynomial.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < len(t); k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// x2nModP is x^(n·2^k) modulo the polynomial.
func x2nModP(n uint64, k uint) uint32 {
	p := uint32(1) << 31 // x^0
	for ; n != 0; n >>= 1 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		k++
	}
	return p
}
