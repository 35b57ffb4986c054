package kernel

import (
	"fmt"
	"math"
)

// KC bounds the depth of one pass of the blocked product, so that a KC×NR
// panel of B stays in the L1 cache while a micro-kernel walks down A.
const KC = 512

// Kernel is a register-tiled micro-kernel: Fn adds (or, without add, stores)
// the MR×NR product of A's rows (element (i,p) at a[i*ais+p*aps]) and B's
// columns (element (p,j) at b[p*ldb+j]) into C (element (i,j) at
// c[i*ldc+j]). The slices start at the tile's first element; k is the depth.
type Kernel struct {
	Name   string
	MR, NR int
	Fn     func(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool)
}

// Chain is a list of kernels from the largest tile down: Gemm covers what
// the first one's tiles leave over with the next, and the rest with plain Go.
type Chain []Kernel

// RowAlign and ColAlign are the multiples at which callers may split a
// product (rows or columns of C) into independent calls without changing
// any output bit.
func (c Chain) RowAlign() int { return c.align(func(k Kernel) int { return k.MR }) }

// ColAlign: see RowAlign.
func (c Chain) ColAlign() int { return c.align(func(k Kernel) int { return k.NR }) }

func (c Chain) align(f func(Kernel) int) int {
	a := 1
	for _, k := range c {
		a = lcm(a, f(k))
	}
	return a
}

func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// String lists the kernels.
func (c Chain) String() string {
	var s string
	for i, k := range c {
		if i > 0 {
			s += " + "
		}
		s += k.Name
	}
	return s
}

// Portable is the pure-Go chain.
var Portable = Chain{{"Go 4×16", 4, 16, GoKernel}}

// Best is the fastest chain this CPU runs.
func Best() Chain {
	switch {
	case HasAVX512:
		return Chain{{"AVX-512 8×32", 8, 32, avx512Kernel}, {"AVX2 4×16", 4, 16, avx2Kernel}}
	case HasAVX2:
		return Chain{{"AVX2 4×16", 4, 16, avx2Kernel}}
	}
	return Portable
}

// Gemm computes C = A·B + beta·C with the kernels of chain, for row-major C
// (m×n, stride ldc) and B (k×n, stride ldb); beta is 0 or 1. A is m×k with
// stride lda, or with transA stored k×m and used transposed. Each output
// element's arithmetic depends only on its position, so callers that split
// a product at multiples of RowAlign rows or ColAlign columns get
// bit-identical results however they split it. It panics when a slice is
// too short (a programming error).
func Gemm(chain Chain, transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ais, aps := lda, 1
	if transA {
		ais, aps = 1, lda
	}
	if k > 0 && (len(a) < (m-1)*ais+(k-1)*aps+1 || len(b) < (k-1)*ldb+n) || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("kernel: Gemm %d×%d×%d: slices too short (a %d, b %d, c %d)", m, n, k, len(a), len(b), len(c)))
	}
	if k == 0 {
		if beta == 0 {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	g := gemm{a: a, ais: ais, aps: aps, b: b, ldb: ldb, c: c, ldc: ldc}
	for g.p0 = 0; g.p0 < k; g.p0 += KC {
		g.pk = min(KC, k-g.p0)
		g.add = beta != 0 || g.p0 > 0
		g.rect(chain, 0, m, 0, n)
	}
}

// gemm is one depth pass [p0, p0+pk) of a product.
type gemm struct {
	a        []float32
	ais, aps int
	b        []float32
	ldb      int
	c        []float32
	ldc      int
	p0, pk   int
	add      bool
}

// rect computes rows [i0,i1) × columns [j0,j1) of C: the first kernel's
// whole tiles, then the leftover bottom rows and right columns with the
// rest of the chain.
func (g *gemm) rect(chain Chain, i0, i1, j0, j1 int) {
	if i0 >= i1 || j0 >= j1 {
		return
	}
	if len(chain) == 0 {
		g.edge(i0, i1, j0, j1)
		return
	}
	kr := chain[0]
	mt, nt := i0+(i1-i0)/kr.MR*kr.MR, j0+(j1-j0)/kr.NR*kr.NR
	for j := j0; j < nt; j += kr.NR {
		for i := i0; i < mt; i += kr.MR {
			kr.Fn(g.pk, g.a[i*g.ais+g.p0*g.aps:], g.ais, g.aps, g.b[g.p0*g.ldb+j:], g.ldb, g.c[i*g.ldc+j:], g.ldc, g.add)
		}
	}
	g.rect(chain[1:], mt, i1, j0, j1)
	g.rect(chain[1:], i0, mt, nt, j1)
}

// edge computes a rectangle of C in plain Go. Zero entries of A are
// skipped: after ReLU and dropout most activations are zero.
func (g *gemm) edge(i0, i1, j0, j1 int) {
	for i := i0; i < i1; i++ {
		crow := g.c[i*g.ldc+j0 : i*g.ldc+j1]
		if !g.add {
			clear(crow)
		}
		for p := g.p0; p < g.p0+g.pk; p++ {
			av := g.a[i*g.ais+p*g.aps]
			if av == 0 {
				continue
			}
			brow := g.b[p*g.ldb+j0 : p*g.ldb+j1]
			for j, bv := range brow[:len(crow)] {
				crow[j] += av * bv
			}
		}
	}
}

// GoKernel is the portable 4×16 micro-kernel.
func GoKernel(k int, a []float32, ais, aps int, b []float32, ldb int, c []float32, ldc int, add bool) {
	for i := range 4 {
		var acc [16]float32
		for p := range k {
			av := a[i*ais+p*aps]
			brow := b[p*ldb : p*ldb+16]
			for j := range acc {
				acc[j] += av * brow[j]
			}
		}
		crow := c[i*ldc : i*ldc+16]
		if add {
			for j := range acc {
				crow[j] += acc[j]
			}
		} else {
			copy(crow, acc[:])
		}
	}
}

// AdamStep holds the scalars of one Adam update, in the order the assembly
// kernel loads them.
type AdamStep struct {
	L2         float32 // coupled weight decay: g += L2·w
	B1, OmB1   float32 // β1, 1-β1
	B2, OmB2   float32 // β2, 1-β2
	Step       float32 // lr / (1-β1^t)
	ISBC2, Eps float32 // 1/√(1-β2^t), ε
}

// NewAdamStep computes the scalars of step t (counted from 1). The bias
// corrections are applied as PyTorch applies them, which is Kingma & Ba's
// θ ← θ − lr·m̂/(√v̂ + ε) rearranged: lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε).
func NewAdamStep(lr, l2, beta1, beta2, eps float64, t int) AdamStep {
	bc1 := 1 - math.Pow(beta1, float64(t))
	bc2 := 1 - math.Pow(beta2, float64(t))
	return AdamStep{
		L2: float32(l2),
		B1: float32(beta1), OmB1: float32(1 - beta1),
		B2: float32(beta2), OmB2: float32(1 - beta2),
		Step:  float32(lr / bc1),
		ISBC2: float32(1 / math.Sqrt(bc2)),
		Eps:   float32(eps),
	}
}

// Adam updates w, m and v in place from the gradient g (all of w's
// length): g += L2·w; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
// w -= Step·m/(√v·ISBC2 + ε).
func Adam(w, m, v, g []float32, s *AdamStep) {
	if HasAVX2 {
		n := asmAdam(w, m, v, g, s)
		w, m, v, g = w[n:], m[n:], v[n:], g[n:]
	}
	GoAdam(w, m, v, g, s)
}

// GoAdam is Adam in portable Go.
func GoAdam(w, m, v, g []float32, s *AdamStep) {
	m, v, g = m[:len(w)], v[:len(w)], g[:len(w)]
	for i, wi := range w {
		gi := g[i] + s.L2*wi
		mi := s.B1*m[i] + s.OmB1*gi
		vi := s.B2*v[i] + s.OmB2*gi*gi
		m[i], v[i] = mi, vi
		w[i] = wi - s.Step*mi/(float32(math.Sqrt(float64(vi)))*s.ISBC2+s.Eps)
	}
}
