//go:build !openblas

package head

// openblasGemm is set only in builds with the openblas tag.
var openblasGemm sgemmFunc
