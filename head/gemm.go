package head

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/tlearn/tlearn/head/internal/kernel"
)

// sgemm computes C = A·B + beta·C (beta is 0 or 1) for row-major C (m×n,
// stride ldc) and B (k×n, stride ldb). A is m×k with stride lda, or, with
// transA, stored as k×m (stride lda) and used transposed. The trainer never
// needs B transposed, which keeps every backend's contract small.
type sgemmFunc func(transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// gemmBackend is a matrix-product implementation.
type gemmBackend struct {
	name string
	gemm sgemmFunc
	// split says whether the trainer splits products across goroutines
	// itself; the BLAS libraries run their own threads.
	split bool
}

// backend is the matrix product in use, chosen once at start-up: the
// assembly kernels where the CPU has AVX2 and FMA (AVX-512 too where it
// has it); else OpenBLAS when built with the openblas tag; else gonum's
// pure-Go BLAS, which is faster than the portable micro-kernel (whose place
// is the tests).
//
// Measured on the project's 2-core AMD EPYC (Zen 5), one epoch of the
// reference head at N=10,000, D=1280: assembly kernels 1.0–1.3 s (AVX2
// only: 1.8–2.0 s), OpenBLAS 2.1 s, gonum 6–7.5 s. OpenBLAS pays on CPUs
// without the kernels (arm64, old amd64), not here.
var backend = selectBackend() // never reassigned: tests pass other backends explicitly

func selectBackend() gemmBackend {
	switch {
	case kernel.HasAVX2:
		return kernelBackend(kernel.Best())
	case openblasGemm != nil:
		return openblasBackend()
	}
	return gemmBackend{"gonum (pure Go)", gonumGemm, false}
}

func openblasBackend() gemmBackend {
	return gemmBackend{"OpenBLAS (cgo, libopenblas)", openblasGemm, false}
}

func kernelBackend(kern kernel.Chain) gemmBackend {
	return gemmBackend{"Go assembly kernels: " + kern.String(), func(transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		kernel.Gemm(kern, transA, m, n, k, a, lda, b, ldb, beta, c, ldc)
	}, true}
}

// Backend names the matrix-product implementation Train uses, for `tlearn
// doctor` and benchmark reports.
func Backend() string { return backend.name }

var gonumImpl gonum.Implementation

// degenerateGemm handles the products a BLAS need not be called for: an
// empty C, or k = 0 where C becomes beta·C (with beta 0 or 1 here). It
// reports whether it did.
func degenerateGemm(m, n, k int, beta float32, c []float32, ldc int) bool {
	if m == 0 || n == 0 {
		return true
	}
	if k != 0 {
		return false
	}
	if beta == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	return true
}

// gonumGemm uses gonum's pure-Go BLAS, which parallelises large products on
// its own.
func gonumGemm(transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if degenerateGemm(m, n, k, beta, c, ldc) {
		return
	}
	ta := blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	gonumImpl.Sgemm(ta, blas.NoTrans, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}
