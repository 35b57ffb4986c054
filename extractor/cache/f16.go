package cache

import (
	"math"
	"sync"
)

// maps.npy stores IEEE 754 binary16 ("half", NumPy's float16) to halve the
// largest array of a cache: block4_pool activations are post-ReLU values of
// moderate range, for which 11 significant bits are ample for fine-tuning.

// F32ToF16 converts src to IEEE half-precision bits in dst, rounding to the
// nearest value with ties to even (as NumPy's astype(float16)). Values too
// large become ±Inf, too small ±0 or subnormals; NaNs stay NaNs (quiet, sign
// and high payload bits kept). It panics if the lengths differ.
func F32ToF16(dst []uint16, src []float32) {
	if len(dst) != len(src) {
		panic("cache: F32ToF16: length mismatch")
	}
	for i, f := range src {
		dst[i] = f32ToF16(f)
	}
}

// F16ToF32 converts IEEE half-precision bits in src to float32 in dst. Every
// half value, subnormals included, is exactly representable. It panics if the
// lengths differ.
func F16ToF32(dst []float32, src []uint16) {
	if len(dst) != len(src) {
		panic("cache: F16ToF32: length mismatch")
	}
	t := f16Table()
	for i, h := range src {
		dst[i] = t[h]
	}
}

func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		// Keep the top payload bits and force the quiet bit, so that a
		// NaN whose payload sits only in the low bits stays a NaN.
		return sign | 0x7c00 | 0x200 | uint16(mant>>13)
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): value = m * 2^-24, where the float32
		// significand with its implicit bit is M * 2^(exp-150), so
		// m = M >> (14-e), rounded to nearest even.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++ // may carry into the smallest normal, which encodes correctly
		}
		return sign | uint16(q)
	}
	h := sign | uint16(e)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is the correct rounding, up to Inf
	}
	return h
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Normalize the subnormal: shift until the implicit bit appears.
		e := uint32(113)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// The 65,536 possible halves fit a 256 kB table, which turns the conversion
// that the fine-tune trainer runs over every map into one load per element.
var (
	f16Once sync.Once
	f16Tab  *[1 << 16]float32
)

func f16Table() *[1 << 16]float32 {
	f16Once.Do(func() {
		t := new([1 << 16]float32)
		for i := range t {
			t[i] = f16ToF32(uint16(i))
		}
		f16Tab = t
	})
	return f16Tab
}
