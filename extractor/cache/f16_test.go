package cache

import (
	"math"
	"testing"
)

func TestF32ToF16(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"0.1 rounds down", 0.1, 0x2e66},
		{"1/3", 1.0 / 3, 0x3555},
		{"largest half", 65504, 0x7bff},
		{"just under the overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to Inf", 65520, 0x7c00},
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"tie to even, down", 1 + 1.0/2048, 0x3c00},
		{"tie to even, up", 1 + 3.0/2048, 0x3c02},
		{"above tie rounds up", 1 + 1.0/2048 + 1.0/(1<<20), 0x3c01},
		{"smallest normal", 1.0 / (1 << 14), 0x0400},
		{"largest subnormal", 1023.0 / (1 << 24), 0x03ff},
		{"subnormal rounds up into the smallest normal", 1023.75 / (1 << 24), 0x0400},
		{"smallest subnormal", 1.0 / (1 << 24), 0x0001},
		{"half the smallest subnormal ties to zero", 1.0 / (1 << 25), 0x0000},
		{"1.5 smallest subnormals ties to even", 1.5 / (1 << 24), 0x0002},
		{"above half the smallest subnormal", 1.0/(1<<25) + 1.0/(1<<30), 0x0001},
		{"negative subnormal", -3.0 / (1 << 24), 0x8003},
		{"float32 subnormal underflows", math.SmallestNonzeroFloat32, 0x0000},
		{"Inf", float32(math.Inf(1)), 0x7c00},
		{"-Inf", float32(math.Inf(-1)), 0xfc00},
		{"quiet NaN", math.Float32frombits(0x7fc00000), 0x7e00},
		{"NaN with a low payload only", math.Float32frombits(0x7f800001), 0x7e00},
		{"negative NaN", math.Float32frombits(0xffc00000), 0xfe00},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := []uint16{0xdead}
			F32ToF16(got, []float32{tc.in})
			if got[0] != tc.want {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.in, got[0], tc.want)
			}
		})
	}
}

func TestF16ToF32(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		in   uint16
		want float32
	}{
		{"one", 0x3c00, 1},
		{"minus two", 0xc000, -2},
		{"largest", 0x7bff, 65504},
		{"smallest normal", 0x0400, 1.0 / (1 << 14)},
		{"smallest subnormal", 0x0001, 1.0 / (1 << 24)},
		{"largest subnormal", 0x03ff, 1023.0 / (1 << 24)},
		{"a middle subnormal", 0x0200, 1.0 / (1 << 15)},
		{"negative zero", 0x8000, float32(math.Copysign(0, -1))},
		{"Inf", 0x7c00, float32(math.Inf(1))},
		{"-Inf", 0xfc00, float32(math.Inf(-1))},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := []float32{42}
			F16ToF32(got, []uint16{tc.in})
			if math.Float32bits(got[0]) != math.Float32bits(tc.want) {
				t.Errorf("F16ToF32(%#04x) = %g, want %g", tc.in, got[0], tc.want)
			}
		})
	}
}

// TestF16RoundTrip converts every half to float32 and back: all must return
// unchanged except NaNs, which must stay NaNs.
func TestF16RoundTrip(t *testing.T) {
	t.Parallel()
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	f := make([]float32, len(src))
	back := make([]uint16, len(src))
	F16ToF32(f, src)
	F32ToF16(back, f)
	for i := range src {
		isNaN := src[i]&0x7c00 == 0x7c00 && src[i]&0x3ff != 0
		if isNaN {
			if !math.IsNaN(float64(f[i])) || back[i]&0x7c00 != 0x7c00 || back[i]&0x3ff == 0 {
				t.Fatalf("NaN %#04x became %g, %#04x", src[i], f[i], back[i])
			}
			continue
		}
		if back[i] != src[i] {
			t.Fatalf("%#04x -> %g -> %#04x", src[i], f[i], back[i])
		}
	}
}

// TestF32ToF16Nearest checks rounding against the neighbouring halves, for
// inputs below the overflow threshold 65520: the result is never farther
// from the input than a neighbour.
func TestF32ToF16Nearest(t *testing.T) {
	t.Parallel()
	for bits := uint32(0); bits < math.Float32bits(65520); bits += 0x1235 {
		x := math.Float32frombits(bits)
		var h [1]uint16
		F32ToF16(h[:], []float32{x})
		got := float64(f16ToF32(h[0]))
		for _, nb := range []uint16{h[0] - 1, h[0] + 1} {
			if h[0] == 0 && nb == 0xffff || nb >= 0x7c00 {
				continue
			}
			other := float64(f16ToF32(nb))
			if math.Abs(other-float64(x)) < math.Abs(got-float64(x)) {
				t.Fatalf("%g rounded to %g, but %g is nearer", x, got, other)
			}
		}
	}
}

func BenchmarkF16ToF32(b *testing.B) {
	src := make([]uint16, 512*14*14)
	for i := range src {
		src[i] = uint16(i * 7)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(len(src) * 2))
	for b.Loop() {
		F16ToF32(dst, src)
	}
}

func BenchmarkF32ToF16(b *testing.B) {
	src := make([]float32, 512*14*14)
	for i := range src {
		src[i] = float32(i) / 100
	}
	dst := make([]uint16, len(src))
	b.SetBytes(int64(len(src) * 4))
	for b.Loop() {
		F32ToF16(dst, src)
	}
}
