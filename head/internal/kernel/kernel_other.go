//go:build !amd64 || noasm

package kernel

// HasAVX2 and HasAVX512 are false where the assembly kernels do not exist.
const (
	HasAVX2   = false
	HasAVX512 = false
)

func avx2Kernel(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool) {
	panic("kernel: no AVX2 kernel on this platform")
}

func asmAdam(w, m, v, g []float32, s *AdamStep) int { return 0 }

func avx512Kernel(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool) {
	panic("kernel: no AVX-512 kernel on this platform")
}
