package head

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tlearn/tlearn/head/internal/kernel"
	"github.com/tlearn/tlearn/head/internal/recipe"
)

// evalRows is the number of rows evaluated per forward pass outside
// training: large enough that the products run at full speed, small enough
// that the activations stay in the L2 cache.
const evalRows = 256

// network is a dense head with every buffer a training step needs. The
// parameters live in one slice (w1 | b1 | w2 | b2) so that Adam's state can
// mirror it.
//
// w1 is stored in column panels: panel p holds columns [p·P, p·P+P) of the
// D×H kernel as a D×P row-major block (the last panel may be narrower).
// The matrix kernels then read w1 sequentially, where rows of the plain
// layout would be 4·H bytes apart and defeat the prefetchers; Adam does not
// care about the order. With P = H it is the plain Keras layout, which the
// BLAS libraries get.
type network struct {
	d, h, k int // h == 0: no hidden layer
	in      int // inputs of the output layer: h, or d without a hidden layer
	kp      int // K rounded up for the vector kernels: w2, b2 and z2 have kp columns, the last kp-K zero
	panel   int // P, the width of w1's column panels

	params         []float32
	w1, b1, w2, b2 []float32

	// Training state; nil for inference.
	adamM, adamV  []float32 // mirror params
	grad          []float32 // gradients of b1 | w2 | b2; w1's live in blocks
	gb1, gw2, gb2 []float32
	steps         int // Adam steps taken

	// Scratch for up to maxRows rows.
	maxRows int
	xb      []float32 // gathered input rows
	yb      []int32
	z1      []float32 // hidden pre-activations, then activations
	gate    []float32 // per hidden unit: 0 where it was cut, else its dropout scale
	z2      []float32 // logits, then their gradient
	dz1     []float32 // gradient of the hidden pre-activations
	w2t     []float32 // w2 transposed (kp×h), for dz1
	blocks  [][]float32

	// Splitting of the two large products (see kernel.Chain.RowAlign).
	gemm      sgemmFunc
	workers   int
	rowBlock  int // rows of a w1 panel per gradient+Adam task
	pool      *pool
	cur       pass // the pass the workers are running
	adamStep1 kernel.AdamStep
}

// pass describes the product the workers split.
type pass struct {
	x    []float32 // input rows (A)
	rows int
}

func newNetwork(d, h, k, maxRows int, train bool, be gemmBackend) *network {
	n := &network{d: d, h: h, k: k, in: d, kp: k, maxRows: maxRows, gemm: be.gemm, workers: 1}
	if h > 0 {
		n.in = h
	}
	if be.split {
		// Zero columns up to a multiple of 16 let the output layer run on
		// the vector kernels instead of scalar edge code. They stay zero:
		// their gradient is zero, and so is Adam's step for them.
		n.kp = (k + 15) / 16 * 16
	}
	kp := n.kp
	size := d*h + h + n.in*kp + kp
	n.params = make([]float32, size)
	n.w1, n.b1 = n.params[:d*h:d*h], n.params[d*h:d*h+h:d*h+h]
	o := d*h + h
	n.w2, n.b2 = n.params[o:o+n.in*kp:o+n.in*kp], n.params[o+n.in*kp:]
	n.xb = make([]float32, maxRows*d)
	n.yb = make([]int32, maxRows)
	n.z1 = make([]float32, maxRows*h)
	n.z2 = make([]float32, maxRows*kp)
	if train {
		n.adamM, n.adamV = make([]float32, size), make([]float32, size)
		n.grad = make([]float32, size-d*h)
		n.gb1, n.gw2, n.gb2 = n.grad[:h], n.grad[h:h+n.in*kp], n.grad[h+n.in*kp:]
		n.gate = make([]float32, maxRows*h)
		n.dz1 = make([]float32, maxRows*h)
		n.w2t = make([]float32, kp*h)
	}
	if be.split {
		n.workers = runtime.GOMAXPROCS(0)
	}
	// The split points only depend on the shapes, never on the number of
	// workers, so that every run with the same seed is bit-identical.
	chain := kernel.Best()
	ra, ca := chain.RowAlign(), chain.ColAlign()
	n.panel = max(h, 1)
	if be.split {
		n.panel = min(n.panel, ca)
	}
	if h > 0 {
		// About 32 KB of gradient per block, so that it is still in the L1
		// cache when Adam reads it; the BLAS libraries prefer larger calls.
		target := 8192
		if !be.split {
			target = 1 << 17
		}
		n.rowBlock = max(ra, target/n.panel/ra*ra)
		for range max(1, n.workers) {
			n.blocks = append(n.blocks, make([]float32, n.rowBlock*n.panel))
		}
	}
	if n.workers > 1 {
		n.pool = newPool(n)
	}
	return n
}

// close stops the workers.
func (n *network) close() {
	if n.pool != nil {
		n.pool.close()
		n.pool = nil
	}
}

// initGlorot draws Keras' default initialisation: Glorot-uniform kernels
// (limit √(6/(fan_in+fan_out))) and zero biases.
func (n *network) initGlorot(r *rand.Rand) {
	glorot := func(w []float32, fanIn, fanOut int) {
		limit := math.Sqrt(6 / float64(fanIn+fanOut))
		for i := range w {
			w[i] = float32((2*r.Float64() - 1) * limit)
		}
	}
	if n.h > 0 {
		// Drawn in the plain layout, so that the initial weights do not
		// depend on the panel width.
		w1 := make([]float32, len(n.w1))
		glorot(w1, n.d, n.h)
		n.packW1(w1)
	}
	w2 := make([]float32, n.in*n.k)
	glorot(w2, n.in, n.k)
	n.padW2(w2)
	clear(n.b1)
	clear(n.b2)
}

// padW2 stores an in×K kernel into w2's kp columns.
func (n *network) padW2(w []float32) {
	for r := range n.in {
		copy(n.w2[r*n.kp:r*n.kp+n.k], w[r*n.k:(r+1)*n.k])
	}
}

// unpadOutput returns an output kernel and bias in w2's and b2's padded
// layout (such as w2 and b2, or their gradients) as in×K and K.
func (n *network) unpadOutput(w2, b2 []float32) (w, b []float32) {
	w = make([]float32, n.in*n.k)
	for r := range n.in {
		copy(w[r*n.k:(r+1)*n.k], w2[r*n.kp:r*n.kp+n.k])
	}
	return w, append([]float32(nil), b2[:n.k]...)
}

// weights copies the parameters out in Keras layout.
func (n *network) weights(classes []string) *Weights {
	w := &Weights{Classes: append([]string(nil), classes...), Tensors: map[string]Tensor{}}
	put := func(name string, data []float32, shape ...int) {
		w.Tensors[name] = Tensor{Shape: shape, Data: append([]float32(nil), data...)}
	}
	if n.h > 0 {
		w.Tensors[HiddenWeight] = Tensor{Shape: []int{n.d, n.h}, Data: n.unpackW1(nil)}
		put(HiddenBias, n.b1, n.h)
	}
	ow, ob := n.unpadOutput(n.w2, n.b2)
	put(OutputWeight, ow, n.in, n.k)
	put(OutputBias, ob, n.k)
	return w
}

// setWeights copies validated weights in.
func (n *network) setWeights(w *Weights) {
	if k, b, ok := w.Hidden(); ok {
		n.packW1(k.Data)
		copy(n.b1, b.Data)
	}
	k, b := w.Output()
	n.padW2(k.Data)
	copy(n.b2, b.Data)
}

// forward computes the logits of rows input rows x (row-major, d wide) into
// z2. With train set, the hidden layer records each unit's gate for the
// backward pass, and applies dropout when drop is set.
func (n *network) forward(x []float32, rows int, train bool, drop *recipe.Dropout) {
	in := x
	if n.h > 0 {
		z1 := n.z1[:rows*n.h]
		for i := range rows {
			copy(z1[i*n.h:(i+1)*n.h], n.b1)
		}
		n.cur = pass{x: x, rows: rows}
		n.run(taskForward, n.panels())
		switch {
		case drop != nil:
			drop.Apply(z1, n.gate[:rows*n.h])
		case train:
			gate := n.gate[:rows*n.h]
			for i, v := range z1 {
				if v > 0 {
					gate[i] = 1
				} else {
					gate[i], z1[i] = 0, 0
				}
			}
		default:
			for i, v := range z1 {
				z1[i] = max(v, 0)
			}
		}
		in = z1
	}
	kp := n.kp
	z2 := n.z2[:rows*kp]
	for i := range rows {
		copy(z2[i*kp:(i+1)*kp], n.b2)
	}
	n.gemm(false, rows, kp, n.in, in, n.in, n.w2, kp, 1, z2, kp)
}

// panels is the number of w1's column panels.
func (n *network) panels() int { return (n.h + n.panel - 1) / n.panel }

// panelAt returns the first column, the width and the offset in w1 of
// panel p.
func (n *network) panelAt(p int) (col, width, off int) {
	col = p * n.panel
	return col, min(n.panel, n.h-col), col * n.d
}

// packW1 stores a D×H row-major kernel into w1's panels.
func (n *network) packW1(w []float32) {
	for p := range n.panels() {
		col, width, off := n.panelAt(p)
		for r := range n.d {
			copy(n.w1[off+r*width:off+(r+1)*width], w[r*n.h+col:r*n.h+col+width])
		}
	}
}

// unpackW1 returns w1 (or, given, another slice in w1's layout) as a D×H
// row-major kernel.
func (n *network) unpackW1(packed []float32) []float32 {
	if packed == nil {
		packed = n.w1
	}
	w := make([]float32, n.d*n.h)
	for p := range n.panels() {
		col, width, off := n.panelAt(p)
		for r := range n.d {
			copy(w[r*n.h+col:r*n.h+col+width], packed[off+r*width:off+(r+1)*width])
		}
	}
	return w
}

// forwardTask computes panel t of z1 = x·w1 + b1.
func (n *network) forwardTask(t int) {
	col, width, off := n.panelAt(t)
	n.gemm(false, n.cur.rows, width, n.d, n.cur.x, n.d, n.w1[off:], width, 1, n.z1[col:], n.h)
}

// gradTasks is the number of gradient+Adam tasks: every row block of every
// panel of w1.
func (n *network) gradTasks() int { return n.panels() * ((n.d + n.rowBlock - 1) / n.rowBlock) }

// gradTask computes one row block of one panel of w1's gradient into the
// worker's buffer and applies Adam to it while it is in cache.
func (n *network) gradTask(worker, t int) {
	lo, hi := n.w1Grad(t, n.blocks[worker])
	kernel.Adam(n.w1[lo:hi], n.adamM[lo:hi], n.adamV[lo:hi], n.blocks[worker][:hi-lo], &n.adamStep1)
}

// w1Grad computes task t's part of w1's gradient xᵀ·dz1 into g and returns
// the range of w1 it belongs to.
func (n *network) w1Grad(t int, g []float32) (lo, hi int) {
	blocks := (n.d + n.rowBlock - 1) / n.rowBlock
	p, b := t/blocks, t%blocks
	col, width, off := n.panelAt(p)
	r0 := b * n.rowBlock
	r1 := min(r0+n.rowBlock, n.d)
	n.gemm(true, r1-r0, width, n.cur.rows, n.cur.x[r0:], n.d, n.dz1[col:], n.h, 0, g, width)
	return off + r0*width, off + r1*width
}

// w1Gradient returns w1's whole gradient for the current batch as a D×H
// row-major matrix (for tests; training never materialises it).
func (n *network) w1Gradient() []float32 {
	packed := make([]float32, len(n.w1))
	g := make([]float32, n.rowBlock*n.panel)
	for t := range n.gradTasks() {
		lo, hi := n.w1Grad(t, g)
		copy(packed[lo:hi], g)
	}
	return n.unpackW1(packed)
}

// trainStep runs one step of Adam on the rows of x listed in rows and
// returns the batch's summed (weighted) loss and its number of correct
// predictions.
func (n *network) trainStep(x []float32, y []int32, rows []int32, o *trainOptions) (loss float64, correct int) {
	loss, correct = n.gradients(x, y, rows, o)
	n.steps++
	s := kernel.NewAdamStep(o.lr, 0, adamBeta1, adamBeta2, adamEpsilon, n.steps)
	sw := kernel.NewAdamStep(o.lr, o.l2, adamBeta1, adamBeta2, adamEpsilon, n.steps)
	if n.h > 0 {
		// w1's gradient is computed block by block, each block updated
		// while it is in cache; the L2 term is added inside Adam.
		n.adamStep1 = sw
		n.run(taskGrad, n.gradTasks())
		o1 := n.d * n.h
		kernel.Adam(n.b1, n.adamM[o1:o1+n.h], n.adamV[o1:o1+n.h], n.gb1, &s)
	}
	o2 := n.d*n.h + n.h
	o3 := o2 + n.in*n.kp
	kernel.Adam(n.w2, n.adamM[o2:o3], n.adamV[o2:o3], n.gw2, &sw)
	kernel.Adam(n.b2, n.adamM[o3:], n.adamV[o3:], n.gb2, &s)
	return loss, correct
}

// gradients gathers the batch, runs the forward pass and computes every
// gradient but w1's (left to w1Grad): gw2, gb2, dz1 and gb1. n.cur is left
// describing the batch.
func (n *network) gradients(x []float32, y []int32, rows []int32, o *trainOptions) (loss float64, correct int) {
	bs := len(rows)
	for i, r := range rows {
		copy(n.xb[i*n.d:(i+1)*n.d], x[int(r)*n.d:(int(r)+1)*n.d])
		n.yb[i] = y[r]
	}
	xb := n.xb[:bs*n.d]
	n.forward(xb, bs, true, o.drop)
	loss, correct = n.lossGrad(bs, n.yb[:bs], o.smoothing, o.classWeights)

	// The output layer's gradients, then the gradient flowing into the
	// hidden layer, which needs w2 before its update.
	kp := n.kp
	dz2 := n.z2[:bs*kp]
	in := xb
	if n.h > 0 {
		in = n.z1[:bs*n.h]
	}
	n.gemm(true, n.in, kp, bs, in, n.in, dz2, kp, 0, n.gw2, kp)
	clear(n.gb2)
	for i := range bs {
		for j, v := range dz2[i*kp : (i+1)*kp] {
			n.gb2[j] += v
		}
	}
	if n.h > 0 {
		n.backHidden(bs)
	}
	n.cur = pass{x: xb, rows: bs}
	return loss, correct
}

// backHidden computes dz1 = (dz2·w2ᵀ) ⊙ gate and the hidden bias gradient.
// The product runs on the matrix kernels with a transposed copy of w2.
func (n *network) backHidden(bs int) {
	h, kp := n.h, n.kp
	for u := range h {
		for j, v := range n.w2[u*kp : (u+1)*kp] {
			n.w2t[j*h+u] = v
		}
	}
	dz1 := n.dz1[:bs*h]
	n.gemm(false, bs, h, kp, n.z2, kp, n.w2t, h, 0, dz1, h)
	clear(n.gb1)
	for i := range bs {
		row := dz1[i*h : (i+1)*h]
		gate := n.gate[i*h : (i+1)*h]
		for u, g := range gate[:len(row)] {
			row[u] *= g
			n.gb1[u] += row[u]
		}
	}
}

// lossGrad turns the logits of bs rows in z2 into the gradient of the
// batch loss, and returns the summed example losses (times their class
// weights) and the number of rows whose highest logit is the label's.
//
// With label smoothing s the target is t = (1-s)·onehot + s/K; the loss of
// a row is logsumexp(z) − Σ t_j z_j (t sums to 1) and its gradient
// softmax(z) − t, scaled by the class weight and 1/bs.
func (n *network) lossGrad(bs int, y []int32, smoothing float64, classWeights []float64) (loss float64, correct int) {
	k, kp := n.k, n.kp
	u := smoothing / float64(k)
	for i := range bs {
		z := n.z2[i*kp : i*kp+k]
		clear(n.z2[i*kp+k : (i+1)*kp]) // the padding columns get no gradient
		yi := int(y[i])
		lse, arg, sum := recipe.LogSumExp(z)
		if arg == yi {
			correct++
		}
		w := 1.0
		if classWeights != nil {
			w = classWeights[yi]
		}
		loss += w * (lse - u*sum - (1-smoothing)*float64(z[yi]))
		g := w / float64(bs)
		for j, v := range z {
			t := u
			if j == yi {
				t += 1 - smoothing
			}
			z[j] = float32(g * (math.Exp(float64(v)-lse) - t))
		}
	}
	return loss, correct
}

// evalLoss sums the losses of rows logits in z2 and counts the correct
// ones, without class weights.
func (n *network) evalLoss(rows int, y []int32, smoothing float64) (loss float64, correct int) {
	k, kp := n.k, n.kp
	for i := range rows {
		l, arg := recipe.CrossEntropy(n.z2[i*kp:i*kp+k], int(y[i]), smoothing)
		if arg == int(y[i]) {
			correct++
		}
		loss += l
	}
	return loss, correct
}

// The tasks the workers split.
const (
	taskForward = iota
	taskGrad
)

// run executes tasks 0..count-1 of the given kind on the workers and the
// calling goroutine, and returns when all are done.
func (n *network) run(kind, count int) {
	if n.pool == nil || count == 1 {
		for t := range count {
			n.task(kind, 0, t)
		}
		return
	}
	n.pool.run(kind, count)
}

func (n *network) task(kind, worker, t int) {
	switch kind {
	case taskForward:
		n.forwardTask(t)
	case taskGrad:
		n.gradTask(worker, t)
	}
}

// pool holds the helper goroutines of one network, started once, so that
// a step allocates nothing.
type pool struct {
	n    *network
	jobs chan int
	next atomic.Int64
	wg   sync.WaitGroup
	kind int
	cnt  int
}

func newPool(n *network) *pool {
	p := &pool{n: n, jobs: make(chan int)}
	for w := 1; w < n.workers; w++ {
		go func() {
			for range p.jobs {
				p.work(w)
				p.wg.Done()
			}
		}()
	}
	return p
}

func (p *pool) run(kind, count int) {
	p.kind, p.cnt = kind, count
	p.next.Store(0)
	helpers := min(p.n.workers, count) - 1
	p.wg.Add(helpers)
	for range helpers {
		p.jobs <- kind
	}
	p.work(0)
	p.wg.Wait()
}

func (p *pool) work(worker int) {
	for {
		t := int(p.next.Add(1) - 1)
		if t >= p.cnt {
			return
		}
		p.n.task(p.kind, worker, t)
	}
}

func (p *pool) close() { close(p.jobs) }
