//go:build openblas

package head

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import "unsafe"

// openblasGemm calls OpenBLAS's cblas_sgemm (Debian's libopenblas-dev,
// installed by `make setup`; build with `make build-blas`).
var openblasGemm sgemmFunc = func(transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if degenerateGemm(m, n, k, beta, c, ldc) {
		return
	}
	ta := uint32(C.CblasNoTrans)
	if transA {
		ta = uint32(C.CblasTrans)
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, C.CblasNoTrans, C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
