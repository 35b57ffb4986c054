package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
)

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(5) == 0 {
			x[i] = 0 // exercise the zero skip of the edge path
		}
	}
	return x
}

// refGemm is the float64 reference of Gemm.
func refGemm(transA bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, len(c))
	for i := range c {
		out[i] = float64(c[i])
	}
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				av := a[i*lda+p]
				if transA {
					av = a[p*lda+i]
				}
				s += float64(av) * float64(b[p*ldb+j])
			}
			out[i*ldc+j] = float64(beta)*float64(c[i*ldc+j]) + s
		}
	}
	return out
}

func kernels() map[string]Chain {
	ks := map[string]Chain{"go": Portable}
	if HasAVX2 {
		ks["avx2"] = Chain{{"AVX2 4×16", 4, 16, avx2Kernel}}
	}
	if HasAVX512 {
		ks["avx512"] = Best()
	}
	return ks
}

func TestGemm(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {4, 16, 1}, {4, 16, 3}, {5, 17, 7}, {32, 64, 300}, {13, 50, 600}, {8, 32, 0}, {3, 5, 2}, {32, 48, 32}, {8, 32, 5}, {17, 70, 260}, {16, 1024, 33}}
	for name, kern := range kernels() {
		for _, s := range shapes {
			for _, transA := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					m, n, k := s[0], s[1], s[2]
					t.Run(fmt.Sprintf("%s/%dx%dx%d/trans=%v/beta=%g", name, m, n, k, transA, beta), func(t *testing.T) {
						lda, ldb, ldc := k+3, n+2, n+5
						if transA {
							lda = m + 1
						}
						a := randSlice(r, max(m, k)*lda+1)
						b := randSlice(r, (k+1)*ldb)
						c := randSlice(r, m*ldc)
						want := refGemm(transA, m, n, k, a, lda, b, ldb, beta, c, ldc)
						Gemm(kern, transA, m, n, k, a, lda, b, ldb, beta, c, ldc)
						for i := range m {
							for j := range ldc {
								got, w := float64(c[i*ldc+j]), want[i*ldc+j]
								if e := 1e-4 * math.Sqrt(float64(k+1)); !tol.Close(got, w, e, e) {
									t.Fatalf("c[%d,%d] = %g, want %g", i, j, got, w)
								}
							}
						}
					})
				}
			}
		}
	}
}

func TestAdam(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 64, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w, g := randSlice(r, n), randSlice(r, n)
			m, v := randSlice(r, n), randSlice(r, n)
			for i := range v {
				v[i] = v[i] * v[i]
			}
			s := NewAdamStep(1e-3, 0.01, 0.9, 0.999, 1e-7, 3)
			// float64 reference of the same step
			want := make([]float64, n)
			for i := range w {
				gi := float64(g[i]) + 0.01*float64(w[i])
				mi := 0.9*float64(m[i]) + 0.1*gi
				vi := 0.999*float64(v[i]) + 0.001*gi*gi
				mh := mi / (1 - math.Pow(0.9, 3))
				vh := vi / (1 - math.Pow(0.999, 3))
				want[i] = float64(w[i]) - 1e-3*mh/(math.Sqrt(vh)+1e-7)
			}
			Adam(w, m, v, g, &s)
			for i := range w {
				if !tol.Close(float64(w[i]), want[i], 1e-6, 1e-6) {
					t.Fatalf("w[%d] = %g, want %g", i, w[i], want[i])
				}
			}
		})
	}
}

// BenchmarkGemm runs the two large products of a training step at D=1280,
// H=1024, batch 32 the way the trainer calls them: the hidden layer forward
// panel by panel (w1 stored in 32-column panels), and its weight gradient
// in 256-row blocks of each panel.
func BenchmarkGemm(b *testing.B) {
	const d, h, bs, panel, rows = 1280, 1024, 32, 32, 256
	r := rand.New(rand.NewPCG(1, 2))
	x, w, z := randSlice(r, bs*d), randSlice(r, d*h), make([]float32, bs*h)
	dz, g := randSlice(r, bs*h), make([]float32, rows*panel)
	gflops := func(b *testing.B) {
		b.ReportMetric(2*float64(bs*d*h)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	for name, ch := range kernels() {
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				for p := 0; p < h/panel; p++ {
					Gemm(ch, false, bs, panel, d, x, d, w[p*panel*d:], panel, 1, z[p*panel:], h)
				}
			}
			gflops(b)
		})
		b.Run(name+"/gradient", func(b *testing.B) {
			for b.Loop() {
				for p := 0; p < h/panel; p++ {
					for r0 := 0; r0 < d; r0 += rows {
						Gemm(ch, true, rows, panel, bs, x[r0:], d, dz[p*panel:], h, 0, g, panel)
					}
				}
			}
			gflops(b)
		})
	}
}

func BenchmarkAdam(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1280 * 1024
	w, m, v, g := randSlice(r, n), make([]float32, n), make([]float32, n), randSlice(r, n)
	s := NewAdamStep(1e-4, 0, 0.9, 0.999, 1e-7, 1)
	for b.Loop() {
		Adam(w, m, v, g, &s)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}
