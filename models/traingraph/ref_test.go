package traingraph

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
)

// refNet is an independent float64 implementation of block5 + head, the
// reference for the generated training graph. It is written the direct
// way (NCHW loops, torchvision weight layout) so that it shares no
// formulation with the graph's im2col Gemms.
type refNet struct {
	C, H, W, Hidden, K int
	// convW[l] is [C,C,3,3] (torchvision), convB[l] is [C].
	convW, convB [3][]float64
	w1, b1       []float64 // [C,Hidden], [Hidden]
	w2, b2       []float64 // [in,K], [K]
}

// tensors lists the parameters under the training graph's names; the
// slices alias the net's own.
func (n *refNet) tensors() map[string][]float64 {
	m := map[string][]float64{OutputWeight: n.w2, OutputBias: n.b2}
	for l := range 3 {
		m[models.Block5WeightName(l+1)] = n.convW[l]
		m[models.Block5BiasName(l+1)] = n.convB[l]
	}
	if n.Hidden > 0 {
		m[HiddenWeight], m[HiddenBias] = n.w1, n.b1
	}
	return m
}

func newRefNet(rng *rand.Rand, c, h, w, hidden, k int) *refNet {
	n := &refNet{C: c, H: h, W: w, Hidden: hidden, K: k}
	he := func(size, fanIn int) []float64 {
		s := make([]float64, size)
		for i := range s {
			s[i] = rng.NormFloat64() * math.Sqrt(2/float64(fanIn))
		}
		return s
	}
	small := func(size int) []float64 {
		s := make([]float64, size)
		for i := range s {
			s[i] = rng.NormFloat64() * 0.1
		}
		return s
	}
	for l := range 3 {
		n.convW[l] = he(c*c*9, c*9)
		n.convB[l] = small(c)
	}
	in := c
	if hidden > 0 {
		n.w1, n.b1 = he(c*hidden, c), small(hidden)
		in = hidden
	}
	n.w2, n.b2 = he(in*k, in), small(k)
	return n
}

func (n *refNet) zeroLike() *refNet {
	z := &refNet{C: n.C, H: n.H, W: n.W, Hidden: n.Hidden, K: n.K}
	for l := range 3 {
		z.convW[l] = make([]float64, len(n.convW[l]))
		z.convB[l] = make([]float64, len(n.convB[l]))
	}
	z.w1, z.b1 = make([]float64, len(n.w1)), make([]float64, len(n.b1))
	z.w2, z.b2 = make([]float64, len(n.w2)), make([]float64, len(n.b2))
	return z
}

// conv computes y = conv3x3(x, w) + b for one image, NCHW, padding 1.
func refConv(c, h, w int, x, wt, b []float64) []float64 {
	y := make([]float64, c*h*w)
	for o := range c {
		for yy := range h {
			for xx := range w {
				s := b[o]
				for i := range c {
					for ky := range 3 {
						sy := yy + ky - 1
						if sy < 0 || sy >= h {
							continue
						}
						for kx := range 3 {
							sx := xx + kx - 1
							if sx < 0 || sx >= w {
								continue
							}
							s += wt[((o*c+i)*3+ky)*3+kx] * x[(i*h+sy)*w+sx]
						}
					}
				}
				y[(o*h+yy)*w+xx] = s
			}
		}
	}
	return y
}

// lossAndGrad runs the forward pass over a batch of maps [B,C,h,w] with
// one-hot labels [B,K] and the dropout mask [B,maskWidth] (nil: none) and
// returns the mean loss, the logits [B,K] and, when grad is not nil, adds
// the gradient of the loss into grad.
func (n *refNet) lossAndGrad(maps, labels, mask []float64, batch int, grad *refNet) (float64, []float64) {
	c, h, w, k := n.C, n.H, n.W, n.K
	h2, w2 := h/2, w/2
	in := c
	if n.Hidden > 0 {
		in = n.Hidden
	}
	var loss float64
	logitsAll := make([]float64, batch*k)
	for b := range batch {
		// Forward.
		var xs [4][]float64 // conv inputs and the last activation
		var ys [3][]float64 // pre-activations
		xs[0] = maps[b*c*h*w : (b+1)*c*h*w]
		for l := range 3 {
			ys[l] = refConv(c, h, w, xs[l], n.convW[l], n.convB[l])
			xs[l+1] = make([]float64, len(ys[l]))
			for i, v := range ys[l] {
				xs[l+1][i] = math.Max(v, 0)
			}
		}
		x3 := xs[3]
		pool := make([]float64, c*h2*w2)
		for ch := range c {
			for i := range h2 {
				for j := range w2 {
					m := math.Inf(-1)
					for dy := range 2 {
						for dx := range 2 {
							m = math.Max(m, x3[(ch*h+2*i+dy)*w+2*j+dx])
						}
					}
					pool[(ch*h2+i)*w2+j] = m
				}
			}
		}
		f := make([]float64, c)
		for ch := range c {
			for i := range h2 * w2 {
				f[ch] += pool[ch*h2*w2+i]
			}
			f[ch] /= float64(h2 * w2)
		}
		hid, pre := f, []float64(nil)
		if n.Hidden > 0 {
			pre = make([]float64, n.Hidden)
			hid = make([]float64, n.Hidden)
			for j := range n.Hidden {
				s := n.b1[j]
				for i := range c {
					s += f[i] * n.w1[i*n.Hidden+j]
				}
				pre[j], hid[j] = s, math.Max(s, 0)
			}
		}
		d := append([]float64(nil), hid...)
		if mask != nil {
			for j := range d {
				d[j] *= mask[b*in+j]
			}
		}
		logits := logitsAll[b*k : (b+1)*k]
		for j := range k {
			s := n.b2[j]
			for i := range in {
				s += d[i] * n.w2[i*k+j]
			}
			logits[j] = s
		}
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, v)
		}
		var z float64
		for _, v := range logits {
			z += math.Exp(v - mx)
		}
		lse := mx + math.Log(z)
		y := labels[b*k : (b+1)*k]
		for j := range k {
			loss -= y[j] * (logits[j] - lse) / float64(batch)
		}
		if grad == nil {
			continue
		}

		// Backward.
		// Labels may be smoothed or weighted: the gradient of −Σ y·log p
		// is p·Σy − y.
		mass := 0.0
		for _, v := range y {
			mass += v
		}
		dl := make([]float64, k)
		for j := range k {
			dl[j] = (math.Exp(logits[j]-lse)*mass - y[j]) / float64(batch)
			grad.b2[j] += dl[j]
		}
		dd := make([]float64, in)
		for i := range in {
			for j := range k {
				grad.w2[i*k+j] += d[i] * dl[j]
				dd[i] += n.w2[i*k+j] * dl[j]
			}
			if mask != nil {
				dd[i] *= mask[b*in+i]
			}
		}
		df := dd
		if n.Hidden > 0 {
			df = make([]float64, c)
			for j := range n.Hidden {
				if pre[j] <= 0 {
					continue
				}
				grad.b1[j] += dd[j]
				for i := range c {
					grad.w1[i*n.Hidden+j] += f[i] * dd[j]
					df[i] += n.w1[i*n.Hidden+j] * dd[j]
				}
			}
		}
		// GAP and max pool: every window element equal to the maximum
		// receives the window's gradient (the graph's rule).
		dx := make([]float64, c*h*w)
		for ch := range c {
			g := df[ch] / float64(h2*w2)
			for i := range h2 {
				for j := range w2 {
					m := pool[(ch*h2+i)*w2+j]
					for dy := range 2 {
						for dxx := range 2 {
							idx := (ch*h+2*i+dy)*w + 2*j + dxx
							if x3[idx] == m {
								dx[idx] += g
							}
						}
					}
				}
			}
		}
		for l := 2; l >= 0; l-- {
			dy := dx
			for i, v := range ys[l] {
				if v <= 0 {
					dy[i] = 0
				}
			}
			gw, gb, wt, x := grad.convW[l], grad.convB[l], n.convW[l], xs[l]
			dx = make([]float64, c*h*w)
			for o := range c {
				for yy := range h {
					for xx := range w {
						g := dy[(o*h+yy)*w+xx]
						if g == 0 {
							continue
						}
						gb[o] += g
						for i := range c {
							for ky := range 3 {
								sy := yy + ky - 1
								if sy < 0 || sy >= h {
									continue
								}
								for kx := range 3 {
									sx := xx + kx - 1
									if sx < 0 || sx >= w {
										continue
									}
									wi := ((o*c+i)*3+ky)*3 + kx
									xi := (i*h+sy)*w + sx
									gw[wi] += g * x[xi]
									dx[xi] += g * wt[wi]
								}
							}
						}
					}
				}
			}
		}
	}
	return loss, logitsAll
}

// refBatch is a random batch: non-negative maps (they come after a Relu in
// VGG16), one-hot labels and a dropout mask with values 0 or 1/(1−p).
type refBatch struct {
	maps, labels, mask []float64
	n                  int
}

func newRefBatch(rng *rand.Rand, net *refNet, batch int, dropout float64) refBatch {
	b := refBatch{n: batch}
	b.maps = make([]float64, batch*net.C*net.H*net.W)
	for i := range b.maps {
		b.maps[i] = math.Max(rng.NormFloat64(), 0)
	}
	b.labels = make([]float64, batch*net.K)
	for i := range batch {
		b.labels[i*net.K+rng.IntN(net.K)] = 1
	}
	if dropout > 0 {
		in := net.C
		if net.Hidden > 0 {
			in = net.Hidden
		}
		b.mask = make([]float64, batch*in)
		for i := range b.mask {
			if rng.Float64() >= dropout {
				b.mask[i] = 1 / (1 - dropout)
			}
		}
	}
	return b
}

// TestRefNetFiniteDifferences checks the reference's own backward pass
// against central differences of its loss, in float64.
func TestRefNetFiniteDifferences(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc               string
		c, h, w, hidden, k int
		batch              int
		dropout            float64
	}{
		{"hidden and dropout", 3, 4, 4, 5, 3, 2, 0.5},
		{"no hidden, odd maps", 2, 5, 3, 0, 4, 3, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			net := newRefNet(rng, tc.c, tc.h, tc.w, tc.hidden, tc.k)
			bt := newRefBatch(rng, net, tc.batch, tc.dropout)
			grad := net.zeroLike()
			net.lossAndGrad(bt.maps, bt.labels, bt.mask, bt.n, grad)
			grads := grad.tensors()
			const eps = 1e-6
			for name, p := range net.tensors() {
				for range 6 {
					i := rng.IntN(len(p))
					old := p[i]
					p[i] = old + eps
					lp, _ := net.lossAndGrad(bt.maps, bt.labels, bt.mask, bt.n, nil)
					p[i] = old - eps
					lm, _ := net.lossAndGrad(bt.maps, bt.labels, bt.mask, bt.n, nil)
					p[i] = old
					fd := (lp - lm) / (2 * eps)
					if g := grads[name][i]; !tol.Close(fd, g, 1e-7, 1e-5) {
						t.Errorf("%s[%d]: backward %.10g, finite difference %.10g", name, i, g, fd)
					}
				}
			}
		})
	}
}
