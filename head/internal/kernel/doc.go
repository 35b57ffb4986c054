// Package kernel holds the arithmetic inner loops of the head trainer: a
// blocked float32 matrix product built on register-tiled micro-kernels, and
// the Adam update. On amd64 CPUs with AVX-512 or AVX2 and FMA they run in
// assembly; elsewhere (or with the noasm build tag) in portable Go.
//
// It is a package of its own because Go forbids assembly files in a package
// that uses cgo, and package head links OpenBLAS through cgo when built with
// the openblas tag. It knows nothing about layers, losses or files, and
// must not import any tlearn package (head imports it).
package kernel
