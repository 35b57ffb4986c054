package main

import "github.com/tlearn/tlearn/head"

// blasBackend names the matrix-product implementation the head trainer
// uses: OpenBLAS in `make build-blas` builds, else Go assembly kernels
// (AVX-512 or AVX2) where the CPU has them, else gonum's pure-Go BLAS.
func blasBackend() string { return head.Backend() }
