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

// refConv computes y = conv3x3(x, w) + b for one image, NCHW, padding 1.
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
	size, k, in := n.C*n.H*n.W, n.K, n.headIn()
	var loss float64
	logitsAll := make([]float64, batch*k)
	for b := range batch {
		var m []float64
		if mask != nil {
			m = mask[b*in : (b+1)*in]
		}
		fw := n.forward(maps[b*size:(b+1)*size], m, logitsAll[b*k:(b+1)*k])
		y := labels[b*k : (b+1)*k]
		for j := range k {
			loss -= y[j] * (fw.logits[j] - fw.lse) / float64(batch)
		}
		if grad != nil {
			n.backward(fw, y, batch, grad)
		}
	}
	return loss, logitsAll
}

// headIn is the width of the output layer's input: the hidden layer's, or
// the channels' without one.
func (n *refNet) headIn() int {
	if n.Hidden > 0 {
		return n.Hidden
	}
	return n.C
}

// refForward holds one image's activations, layer by layer, for the
// backward pass. The layers, forward and backward, are the ref* functions
// of this file: plain loops over float64 slices that call nothing of the
// graph builder.
type refForward struct {
	xs       [4][]float64 // conv inputs and the last activation
	ys       [3][]float64 // conv pre-activations
	pool     []float64    // max pool of xs[3], [C,h/2,w/2]
	f        []float64    // global average of pool, [C]
	pre, hid []float64    // hidden pre-activation and activation (hid is f without a hidden layer)
	mask     []float64    // the image's dropout mask (nil: none)
	d        []float64    // hid after dropout: the output layer's input
	logits   []float64    // [K]
	lse      float64      // log Σ exp(logits)
}

// forward runs one image x [C,h,w] through block5 and the head, writing
// its logits into logits.
func (n *refNet) forward(x, mask, logits []float64) *refForward {
	c, h, w := n.C, n.H, n.W
	fw := &refForward{mask: mask, logits: logits}
	fw.xs[0] = x
	for l := range 3 {
		fw.ys[l] = refConv(c, h, w, fw.xs[l], n.convW[l], n.convB[l])
		fw.xs[l+1] = refRelu(fw.ys[l])
	}
	fw.pool = refMaxPool(c, h, w, fw.xs[3])
	fw.f = refGlobalAvg(c, (h/2)*(w/2), fw.pool)
	fw.hid = fw.f
	if n.Hidden > 0 {
		fw.pre = refDense(fw.f, n.w1, n.b1, make([]float64, n.Hidden))
		fw.hid = refRelu(fw.pre)
	}
	fw.d = refDropout(fw.hid, mask)
	refDense(fw.d, n.w2, n.b2, logits)
	fw.lse = refLogSumExp(logits)
	return fw
}

// backward adds the gradient of one image's share of the mean loss (batch
// images, labels y) into grad.
func (n *refNet) backward(fw *refForward, y []float64, batch int, grad *refNet) {
	c, h, w := n.C, n.H, n.W
	dl := refSoftmaxCrossEntropyGrad(fw.logits, fw.lse, y, batch)
	// Dropout is linear: its backward applies the same mask.
	dd := refDropout(refDenseBackward(fw.d, n.w2, dl, grad.w2, grad.b2), fw.mask)
	df := dd
	if n.Hidden > 0 {
		df = refDenseBackward(fw.f, n.w1, refReluBackward(fw.pre, dd), grad.w1, grad.b1)
	}
	dpool := refGlobalAvgBackward(c, (h/2)*(w/2), df)
	dx := refMaxPoolBackward(c, h, w, fw.xs[3], fw.pool, dpool)
	for l := 2; l >= 0; l-- {
		dy := refReluBackward(fw.ys[l], dx)
		dx = refConvBackward(c, h, w, fw.xs[l], n.convW[l], dy, grad.convW[l], grad.convB[l])
	}
}

// refRelu is max(v, 0), elementwise.
func refRelu(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Max(x, 0)
	}
	return out
}

// refReluBackward zeroes, in place, the entries of dy whose pre-activation
// is not positive, and returns dy.
func refReluBackward(pre, dy []float64) []float64 {
	for i, v := range pre {
		if v <= 0 {
			dy[i] = 0
		}
	}
	return dy
}

// refDropout is v ⊙ mask, or a copy of v when mask is nil.
func refDropout(v, mask []float64) []float64 {
	out := append([]float64(nil), v...)
	if mask != nil {
		for j := range out {
			out[j] *= mask[j]
		}
	}
	return out
}

// refMaxPool is the 2×2, stride 2 max pool of x [C,h,w].
func refMaxPool(c, h, w int, x []float64) []float64 {
	h2, w2 := h/2, w/2
	pool := make([]float64, c*h2*w2)
	for ch := range c {
		for i := range h2 {
			for j := range w2 {
				m := math.Inf(-1)
				for dy := range 2 {
					for dx := range 2 {
						m = math.Max(m, x[(ch*h+2*i+dy)*w+2*j+dx])
					}
				}
				pool[(ch*h2+i)*w2+j] = m
			}
		}
	}
	return pool
}

// refMaxPoolBackward spreads dpool over x's windows: every window element
// equal to the maximum receives the window's gradient (the graph's rule).
func refMaxPoolBackward(c, h, w int, x, pool, dpool []float64) []float64 {
	h2, w2 := h/2, w/2
	dx := make([]float64, c*h*w)
	for ch := range c {
		for i := range h2 {
			for j := range w2 {
				m, g := pool[(ch*h2+i)*w2+j], dpool[(ch*h2+i)*w2+j]
				for dy := range 2 {
					for dxx := range 2 {
						idx := (ch*h+2*i+dy)*w + 2*j + dxx
						if x[idx] == m {
							dx[idx] += g
						}
					}
				}
			}
		}
	}
	return dx
}

// refGlobalAvg is the mean of each of c planes of size values.
func refGlobalAvg(c, size int, x []float64) []float64 {
	f := make([]float64, c)
	for ch := range c {
		for i := range size {
			f[ch] += x[ch*size+i]
		}
		f[ch] /= float64(size)
	}
	return f
}

// refGlobalAvgBackward gives every element of a plane its mean's
// gradient over the plane's size.
func refGlobalAvgBackward(c, size int, df []float64) []float64 {
	dx := make([]float64, c*size)
	for ch := range c {
		g := df[ch] / float64(size)
		for i := range size {
			dx[ch*size+i] = g
		}
	}
	return dx
}

// refDense writes x·wt + b into out: x [in], wt [in,len(out)], b
// [len(out)]; it returns out.
func refDense(x, wt, b, out []float64) []float64 {
	k := len(out)
	for j := range k {
		s := b[j]
		for i := range x {
			s += x[i] * wt[i*k+j]
		}
		out[j] = s
	}
	return out
}

// refDenseBackward adds the gradients of wt and b for the output gradient
// dout into gw and gb and returns the input's gradient.
func refDenseBackward(x, wt, dout, gw, gb []float64) []float64 {
	k := len(dout)
	for j := range k {
		gb[j] += dout[j]
	}
	dx := make([]float64, len(x))
	for i := range x {
		for j := range k {
			gw[i*k+j] += x[i] * dout[j]
			dx[i] += wt[i*k+j] * dout[j]
		}
	}
	return dx
}

// refLogSumExp is log Σ exp(v), computed from the maximum.
func refLogSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, x)
	}
	var z float64
	for _, x := range v {
		z += math.Exp(x - mx)
	}
	return mx + math.Log(z)
}

// refSoftmaxCrossEntropyGrad is the gradient of −Σ y·log softmax(logits)
// over batch images. Labels may be smoothed or weighted: the gradient is
// p·Σy − y.
func refSoftmaxCrossEntropyGrad(logits []float64, lse float64, y []float64, batch int) []float64 {
	mass := 0.0
	for _, v := range y {
		mass += v
	}
	dl := make([]float64, len(logits))
	for j := range logits {
		dl[j] = (math.Exp(logits[j]-lse)*mass - y[j]) / float64(batch)
	}
	return dl
}

// refConvBackward adds the gradients of conv3x3(x, wt) + b for the output
// gradient dy [C,h,w] into gw and gb and returns the input's gradient.
func refConvBackward(c, h, w int, x, wt, dy, gw, gb []float64) []float64 {
	dx := make([]float64, c*h*w)
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
	return dx
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
