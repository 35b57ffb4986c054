//go:build !noasm

package kernel

import "golang.org/x/sys/cpu"

// HasAVX2 reports whether the AVX2 assembly kernels run on this CPU, and
// HasAVX512 whether the AVX-512 one does too.
var (
	HasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	HasAVX512 = HasAVX2 && cpu.X86.HasAVX512F
)

//go:noescape
func avx2Kernel4x16(k int, a *float32, ais, aps int, b *float32, ldb int, c *float32, ldc int, add int)

//go:noescape
func avx512Kernel8x32(k int, a *float32, ais, aps int, b *float32, ldb int, c *float32, ldc int, add int)

//go:noescape
func avx2Adam(w, m, v, grad *float32, n int, s *AdamStep)

//go:noescape
func avx512Adam(w, m, v, grad *float32, n int, s *AdamStep)

// avx2Kernel is the MicroKernel in assembly. The slices only carry the
// tile's start: Gemm has checked the bounds of the whole product.
func avx2Kernel(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool) {
	ad := 0
	if add {
		ad = 1
	}
	avx2Kernel4x16(k, &a[0], ais, aps, &b[0], ldb, &c[0], ldc, ad)
}

// avx512Kernel is the 8×32 AVX-512 kernel, called like avx2Kernel.
func avx512Kernel(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool) {
	ad := 0
	if add {
		ad = 1
	}
	avx512Kernel8x32(k, &a[0], ais, aps, &b[0], ldb, &c[0], ldc, ad)
}

// asmAdam runs the assembly Adam on the longest prefix it can take and
// returns its length.
func asmAdam(w, m, v, g []float32, s *AdamStep) int {
	n := len(w) &^ 7
	if HasAVX512 {
		n = len(w) &^ 15
	}
	if n == 0 {
		return 0
	}
	_, _, _ = m[n-1], v[n-1], g[n-1]
	if HasAVX512 {
		avx512Adam(&w[0], &m[0], &v[0], &g[0], n, s)
	} else {
		avx2Adam(&w[0], &m[0], &v[0], &g[0], n, s)
	}
	return n
}
