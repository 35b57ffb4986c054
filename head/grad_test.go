package head

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tlearn/tlearn/head/internal/recipe"
	"github.com/tlearn/tlearn/internal/testutil/tol"
)

// near reports whether got is within an absolute plus relative tolerance
// of want.

// gradCase is a small head and batch for the gradient checks.
type gradCase struct {
	desc           string
	hidden         int
	dropout        float64
	l2             float64
	smoothing      float64
	balanced       bool
	d, k, batch, n int
}

var gradCases = []gradCase{
	{desc: "hidden", hidden: 5, d: 6, k: 4, batch: 7, n: 20},
	{desc: "hidden with dropout", hidden: 6, dropout: 0.5, d: 5, k: 3, batch: 8, n: 20},
	{desc: "hidden with L2, smoothing and class weights", hidden: 5, dropout: 0.3, l2: 0.05, smoothing: 0.1, balanced: true, d: 6, k: 4, batch: 9, n: 20},
	{desc: "no hidden", d: 7, k: 3, batch: 6, n: 20},
	{desc: "no hidden with L2, smoothing and class weights", l2: 0.1, smoothing: 0.2, balanced: true, d: 7, k: 5, batch: 10, n: 20},
	{desc: "wide enough for the assembly tiles", hidden: 40, dropout: 0.5, l2: 0.01, d: 20, k: 33, batch: 9, n: 20},
}

// setup makes the network (with non-zero biases, so that their gradients
// matter), the data and the options of a case.
func (c gradCase) setup(be gemmBackend) (*network, *Data, []int32, *trainOptions) {
	r := rand.New(rand.NewPCG(7, uint64(c.d*100+c.k)))
	data := &Data{X: make([]float32, c.n*c.d), Y: make([]int32, c.n)}
	for i := range data.X {
		data.X[i] = float32(r.NormFloat64())
	}
	for i := range data.Y {
		data.Y[i] = int32(r.IntN(c.k) * r.IntN(2)) // unbalanced: class 0 is common
	}
	for j := range c.k {
		data.Classes = append(data.Classes, fmt.Sprint(j))
	}
	n := newNetwork(c.d, c.hidden, c.k, c.batch, true, be)
	n.initGlorot(r)
	for i := range n.b1 {
		n.b1[i] = float32(0.1 * r.NormFloat64())
	}
	for i := range n.b2 {
		n.b2[i] = float32(0.1 * r.NormFloat64())
	}
	rows := make([]int32, c.batch)
	for i := range rows {
		rows[i] = int32(r.IntN(c.n))
	}
	o := &trainOptions{lr: 1e-3, l2: c.l2, smoothing: c.smoothing}
	if c.dropout > 0 {
		o.drop = recipe.NewDropout(c.dropout, 11)
	}
	if c.balanced {
		o.classWeights = recipe.BalancedWeights(data.classCounts())
	}
	return n, data, rows, o
}

// refLoss is the batch loss in float64, written independently of the
// trainer: mean over rows of w_y·(logsumexp(z) − Σ t_j z_j) with the
// smoothed targets t, plus l2/2·(‖w1‖² + ‖w2‖²). mask holds the dropout
// factor of each hidden unit of each row (0 or the scale).
func (c gradCase) refLoss(p []float64, data *Data, rows []int32, o *trainOptions, mask []float64) float64 {
	d, h, k := c.d, c.hidden, c.k
	in := d
	if h > 0 {
		in = h
	}
	w1, b1 := p[:d*h], p[d*h:d*h+h]
	w2, b2 := p[d*h+h:d*h+h+in*k], p[d*h+h+in*k:]
	var loss float64
	act := make([]float64, in)
	for i, r := range rows {
		x := data.X[int(r)*d : (int(r)+1)*d]
		if h > 0 {
			for u := range h {
				s := b1[u]
				for j := range d {
					s += float64(x[j]) * w1[j*h+u]
				}
				act[u] = math.Max(s, 0) * mask[i*h+u]
			}
		} else {
			for j := range d {
				act[j] = float64(x[j])
			}
		}
		z := make([]float64, k)
		mx := math.Inf(-1)
		for j := range k {
			z[j] = b2[j]
			for u := range in {
				z[j] += act[u] * w2[u*k+j]
			}
			mx = math.Max(mx, z[j])
		}
		var se float64
		for _, v := range z {
			se += math.Exp(v - mx)
		}
		lse := mx + math.Log(se)
		y := int(data.Y[r])
		var tz float64
		for j, v := range z {
			t := o.smoothing / float64(k)
			if j == y {
				t += 1 - o.smoothing
			}
			tz += t * v
		}
		w := 1.0
		if o.classWeights != nil {
			w = o.classWeights[y]
		}
		loss += w * (lse - tz)
	}
	loss /= float64(len(rows))
	var sq float64
	for _, v := range w1 {
		sq += v * v
	}
	for _, v := range w2 {
		sq += v * v
	}
	return loss + o.l2/2*sq
}

// TestGradients checks the trainer's gradients (what it hands to Adam: the
// data gradient plus L2·w on the kernels) against central finite
// differences of the float64 reference loss.
func TestGradients(t *testing.T) {
	t.Parallel()
	forBackends(t, testGradients)
}

// forBackends runs a test with every matrix-product backend of the build.
func forBackends(t *testing.T, test func(t *testing.T, be gemmBackend)) {
	for _, be := range benchBackends() {
		t.Run(be.name, func(t *testing.T) { test(t, be) })
	}
}

func testGradients(t *testing.T, be gemmBackend) {
	for _, c := range gradCases {
		t.Run(c.desc, func(t *testing.T) {
			n, data, rows, o := c.setup(be)
			defer n.close()
			// p is the parameters in the reference's plain layout.
			plain := n.plainParams()
			p := make([]float64, len(plain))
			for i, v := range plain {
				p[i] = float64(v)
			}
			lossSum, _ := n.gradients(data.X, data.Y, rows, o)
			got := make([]float64, len(p))
			if c.hidden > 0 {
				for i, v := range n.w1Gradient() {
					got[i] = float64(v) + o.l2*p[i]
				}
			}
			off := c.d * c.hidden
			for i, v := range n.plainGrad() {
				got[off+i] = float64(v)
			}
			o2 := off + c.hidden
			for i := range len(p) - off - c.hidden - c.k { // w2
				got[o2+i] += o.l2 * p[o2+i]
			}

			// The dropout factors the step drew: a fresh generator with the
			// same seed, applied to all-positive units, redraws them.
			mask := make([]float64, c.batch*c.hidden)
			if o.drop != nil {
				ones := make([]float32, len(mask))
				for i := range ones {
					ones[i] = 1
				}
				recipe.NewDropout(c.dropout, 11).Apply(ones, make([]float32, len(ones)))
				for i, v := range ones {
					mask[i] = float64(v)
				}
			} else {
				for i := range mask {
					mask[i] = 1
				}
			}

			ref := c.refLoss(p, data, rows, o, mask)
			var sq float64
			for i := range c.d * c.hidden {
				sq += p[i] * p[i]
			}
			for i := range len(p) - off - c.hidden - c.k { // w2
				sq += p[o2+i] * p[o2+i]
			}
			if want := ref - o.l2/2*sq; !tol.Close(lossSum/float64(c.batch), want, 1e-5, 1e-5) {
				t.Errorf("batch loss %g, reference %g", lossSum/float64(c.batch), want)
			}
			const eps = 1e-5
			for i := range p {
				orig := p[i]
				p[i] = orig + eps
				up := c.refLoss(p, data, rows, o, mask)
				p[i] = orig - eps
				down := c.refLoss(p, data, rows, o, mask)
				p[i] = orig
				num := (up - down) / (2 * eps)
				if !tol.Close(got[i], num, 1e-4, 1e-3) {
					t.Errorf("parameter %d (%s): gradient %g, finite difference %g", i, c.paramName(i), got[i], num)
				}
			}
		})
	}
}

func (c gradCase) paramName(i int) string {
	in := c.d
	if c.hidden > 0 {
		in = c.hidden
	}
	for _, t := range []struct {
		name string
		size int
	}{{HiddenWeight, c.d * c.hidden}, {HiddenBias, c.hidden}, {OutputWeight, in * c.k}, {OutputBias, c.k}} {
		if i < t.size {
			return fmt.Sprintf("%s[%d]", t.name, i)
		}
		i -= t.size
	}
	return "?"
}

// TestStepIsAdam checks that one training step (w1's gradient computed and
// applied block by block inside the workers) equals Adam, computed in
// float64, applied to the gradients of TestGradients.
func TestStepIsAdam(t *testing.T) {
	t.Parallel()
	forBackends(t, testStepIsAdam)
}

func testStepIsAdam(t *testing.T, be gemmBackend) {
	for _, c := range gradCases {
		t.Run(c.desc, func(t *testing.T) {
			n, data, rows, o := c.setup(be)
			defer n.close()
			before := n.plainParams()
			n.gradients(data.X, data.Y, rows, o)
			g := make([]float64, len(before))
			if c.hidden > 0 {
				for i, v := range n.w1Gradient() {
					g[i] = float64(v) + o.l2*float64(before[i])
				}
			}
			off := c.d * c.hidden
			for i, v := range n.plainGrad() {
				g[off+i] = float64(v)
			}
			for i := range len(before) - off - c.hidden - c.k { // w2
				j := off + c.hidden + i
				g[j] += o.l2 * float64(before[j])
			}

			m, _, _, o2 := c.setup(be)
			defer m.close()
			for step := 1; step <= 2; step++ {
				m.trainStep(data.X, data.Y, rows, o2)
				if step == 1 {
					// Adam's first step from zero moments: m̂ = g, v̂ = g².
					after := m.plainParams()
					for i, w0 := range before {
						want := float64(w0) - 1e-3*g[i]/(math.Abs(g[i])+1e-7)
						if !tol.Close(float64(after[i]), want, 1e-6, 1e-5) {
							t.Fatalf("after one step, parameter %d (%s) = %g, want %g", i, c.paramName(i), after[i], want)
						}
					}
				}
			}
			if m.steps != 2 {
				t.Errorf("steps = %d, want 2", m.steps)
			}
		})
	}
}

// plainParams returns the parameters w1 | b1 | w2 | b2 in the plain
// layouts (w1 D×H, w2 in×K).
func (n *network) plainParams() []float32 {
	var p []float32
	if n.h > 0 {
		p = append(n.unpackW1(nil), n.b1...)
	}
	w, b := n.unpadOutput(n.w2, n.b2)
	return append(append(p, w...), b...)
}

// plainGrad returns the gradients of b1 | w2 | b2 in the plain layouts.
func (n *network) plainGrad() []float32 {
	w, b := n.unpadOutput(n.gw2, n.gb2)
	return append(append(append([]float32(nil), n.gb1...), w...), b...)
}

// TestW1GradientBlocks checks the panel and row-block plumbing of w1's
// gradient on a size with several panels (one narrow) and row blocks, too
// large for finite differences: against xᵀ·dz1 computed in float64.
func TestW1GradientBlocks(t *testing.T) {
	t.Parallel()
	forBackends(t, testW1GradientBlocks)
}

func testW1GradientBlocks(t *testing.T, be gemmBackend) {
	c := gradCase{hidden: 70, dropout: 0.5, d: 600, k: 3, batch: 13, n: 20}
	n, data, rows, o := c.setup(be)
	defer n.close()
	// Small row blocks, whatever the backend would choose.
	n.rowBlock = 64
	for i := range n.blocks {
		n.blocks[i] = make([]float32, n.rowBlock*n.panel)
	}
	if n.gradTasks() < 4 {
		t.Fatalf("only %d gradient tasks: the case does not exercise the blocks", n.gradTasks())
	}
	n.gradients(data.X, data.Y, rows, o)
	got := n.w1Gradient()
	for r := range c.d {
		for u := range c.hidden {
			var want float64
			for i, row := range rows {
				want += float64(data.X[int(row)*c.d+r]) * float64(n.dz1[i*c.hidden+u])
			}
			if g := float64(got[r*c.hidden+u]); !tol.Close(g, want, 1e-5, 1e-4) {
				t.Fatalf("gradient[%d,%d] = %g, want %g", r, u, g, want)
			}
		}
	}
	// Packing round-trips.
	w := n.unpackW1(nil)
	n.packW1(w)
	if !slicesEqual(n.unpackW1(nil), w) {
		t.Error("unpack(pack(w)) != w")
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
