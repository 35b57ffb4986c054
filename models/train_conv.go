package models

import "fmt"

// convForm is how the training graph computes block5's convolutions and
// their gradients. ONNX Runtime's CPU Conv kernel runs a 3×3 convolution
// with an internal, cache-blocked im2col; a Gemm reaches higher GFLOP/s but
// needs the im2col matrix (9× the activations) written out by Gather or
// Slice+Concat, which is memory-bound. The weight gradient has no fast Conv
// form (the transposed-Conv trick runs a GEMM with 9 output columns), so
// every form computes it as a Gemm. BENCHMARKS.md has the measurements that
// chose the default (the zero value).
type convForm int

const (
	// convHybrid keeps activations NCHW: Conv for the forward pass and
	// for dX (with the weight rotated by 180° and transposed), dW as
	// dYᵀ·im2col(X) from NHWC copies of X and dY. Weights are OIHW.
	convHybrid convForm = iota
	// convGEMM keeps activations NHWC: im2col + Gemm for the forward pass,
	// the same im2col matrix for dW = dYᵀ·Xcol, and im2col(dY)·W_rot for
	// dX. Weights are OHWI.
	convGEMM
	// convGEMMConvDX is convGEMM with dX by Conv (transposing dY to NCHW
	// and dX back), trading one im2col for two transposes.
	convGEMMConvDX
)

// Layouts of a convolution weight in a training graph.
const (
	LayoutOIHW = "OIHW" // torchvision [O,I,3,3]
	LayoutOHWI = "OHWI" // [O,3,3,I]: row o is the im2col Gemm's column o
)

func (f convForm) nchw() bool { return f == convHybrid }

func (f convForm) weightLayout() string {
	if f == convHybrid {
		return LayoutOIHW
	}
	return LayoutOHWI
}

// FromTorchvision writes a value of p given in torchvision's layout
// (convolution weights [O,I,3,3]) into dst in the graph's layout.
func (p TrainParam) FromTorchvision(dst, src []float32) {
	if len(dst) != p.Size() || len(src) != p.Size() {
		panic("models: FromTorchvision: length mismatch for " + p.Name)
	}
	if p.Layout != LayoutOHWI {
		copy(dst, src)
		return
	}
	o, i := int(p.Shape[0]), int(p.Shape[3])
	for oc := range o {
		for ic := range i {
			for k := range 9 {
				dst[(oc*9+k)*i+ic] = src[(oc*i+ic)*9+k]
			}
		}
	}
}

// ToTorchvision is the inverse of FromTorchvision.
func (p TrainParam) ToTorchvision(dst, src []float32) {
	if len(dst) != p.Size() || len(src) != p.Size() {
		panic("models: ToTorchvision: length mismatch for " + p.Name)
	}
	if p.Layout != LayoutOHWI {
		copy(dst, src)
		return
	}
	o, i := int(p.Shape[0]), int(p.Shape[3])
	for oc := range o {
		for ic := range i {
			for k := range 9 {
				dst[(oc*i+ic)*9+k] = src[(oc*9+k)*i+ic]
			}
		}
	}
}

// im2col turns NHWC x [B,h,w,C] into the [B·h·w, 9·C] matrix whose row for
// a pixel holds its zero-padded 3×3 neighbourhood in (ky, kx, c) order, the
// column order of an OHWI weight flattened to [O, 9·C].
func (b *graphBuilder) im2col(x string) string {
	if b.sliceIm2col {
		return b.im2colSlices(x)
	}
	s := b.shape(x)
	h, w, c := s[1], s[2], s[3]
	// One Gather over the padded image's pixels with a constant table of
	// each output pixel's 9 neighbours.
	xp := b.node("Pad", []string{x, b.constInts(0, 1, 1, 0, 0, 1, 1, 0)}, []int64{s[0], h + 2, w + 2, c})
	flat := b.node("Reshape", []string{xp, b.constInts(-1, (h+2)*(w+2), c)}, []int64{s[0], (h + 2) * (w + 2), c})
	key := fmt.Sprint("im2col", h, w)
	idx, ok := b.consts[key]
	if !ok {
		tab := make([]int64, 0, h*w*9)
		for y := range h {
			for x := range w {
				for k := range int64(9) {
					tab = append(tab, (y+k/3)*(w+2)+x+k%3)
				}
			}
		}
		idx = b.fresh("im2col_index")
		b.g.Initializer = append(b.g.Initializer, NewTensorInt64(idx, []int64{int64(len(tab))}, tab))
		b.consts[key] = idx
	}
	g := b.node("Gather", []string{flat, idx}, []int64{s[0], h * w * 9, c}, attrInt("axis", 1))
	return b.node("Reshape", []string{g, b.constInts(-1, 9*c)}, []int64{batchDim, 9 * c})
}

// im2colSlices is im2col as a Pad, nine shifted Slices and a Concat.
func (b *graphBuilder) im2colSlices(x string) string {
	s := b.shape(x)
	h, w, c := s[1], s[2], s[3]
	xp := b.node("Pad", []string{x, b.constInts(0, 1, 1, 0, 0, 1, 1, 0)}, []int64{s[0], h + 2, w + 2, c})
	parts := make([]string, 0, 9)
	for k := range int64(9) {
		ky, kx := k/3, k%3
		parts = append(parts, b.node("Slice",
			[]string{xp, b.constInts(ky, kx), b.constInts(ky+h, kx+w), b.constInts(1, 2)}, s))
	}
	cat := b.node("Concat", parts, []int64{s[0], h, w, 9 * c}, attrInt("axis", 3))
	return b.node("Reshape", []string{cat, b.constInts(-1, 9*c)}, []int64{batchDim, 9 * c})
}

// conv3x3 is a 3×3 convolution, stride 1, padding 1, of x (NCHW or NHWC
// as b.form says) with weight w in the form's layout and bias [O].
func (b *graphBuilder) conv3x3(x, w, bias string) string {
	s, ws := b.shape(x), b.shape(w)
	o := ws[0]
	var y string
	saved := map[string]string{}
	if b.form.nchw() {
		y = b.node("Conv", []string{x, w, bias}, []int64{s[0], o, s[2], s[3]},
			attrInts("kernel_shape", 3, 3), attrInts("pads", 1, 1, 1, 1))
	} else {
		xcol := b.im2col(x)
		w2 := b.node("Reshape", []string{w, b.constInts(o, 9*s[3])}, []int64{o, 9 * s[3]})
		y2 := b.node("Gemm", []string{xcol, w2, bias}, []int64{batchDim, o}, attrInt("transB", 1))
		y = b.node("Reshape", []string{y2, b.constInts(-1, s[1], s[2], o)}, []int64{s[0], s[1], s[2], o})
		saved["xcol"], saved["w2"] = xcol, w2
	}
	b.record("Conv3x3", []string{x, w, bias}, []string{y}, saved)
	return y
}

// convGrad: with Y = Xcol·Wᵀ + b, dW = dYᵀ·Xcol (the transposed operand
// is the small dY, which MLAS packs faster than the im2col matrix),
// db = Σ dY, and dX is the convolution of dY with the weight rotated by
// 180° and transposed (in ↔ out).
func convGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	x, w := n.in[0], n.in[1]
	s, ws := b.shape(x), b.shape(w)
	o := ws[0]
	nchw := b.form.nchw()
	c := s[3]
	if nchw {
		c = s[1]
	}
	dy := dOut[0]
	// Row-major [B·h·w, O] view of dY, and the im2col matrix of X.
	var dy2, xcol string
	if nchw {
		t := b.node("Transpose", []string{dy}, []int64{s[0], s[2], s[3], o}, attrInts("perm", 0, 2, 3, 1))
		dy2 = b.node("Reshape", []string{t, b.constInts(-1, o)}, []int64{batchDim, o})
	} else {
		dy2 = b.node("Reshape", []string{dy, b.constInts(-1, o)}, []int64{batchDim, o})
		xcol = n.saved["xcol"]
	}
	d := make([]string, 3)
	if need[0] {
		d[0] = b.convInputGrad(dy, w, s)
	}
	if need[1] {
		if nchw {
			xt := b.node("Transpose", []string{x}, []int64{s[0], s[2], s[3], c}, attrInts("perm", 0, 2, 3, 1))
			xcol = b.im2col(xt)
		}
		dw2 := b.node("Gemm", []string{dy2, xcol}, []int64{o, 9 * c}, attrInt("transA", 1))
		if nchw {
			r := b.node("Reshape", []string{dw2, b.constInts(o, 3, 3, c)}, []int64{o, 3, 3, c})
			d[1] = b.node("Transpose", []string{r}, ws, attrInts("perm", 0, 3, 1, 2))
		} else {
			d[1] = b.node("Reshape", []string{dw2, b.constInts(ws...)}, ws)
		}
	}
	if need[2] {
		d[2] = b.node("ReduceSum", []string{dy2, b.constInts(0)}, []int64{o}, attrInt("keepdims", 0))
	}
	return d
}

// convInputGrad is dX for a conv3x3 with input shape s: the convolution
// of dY with the weight rotated by 180° and transposed.
func (b *graphBuilder) convInputGrad(dy, w string, s []int64) string {
	ws := b.shape(w)
	o := ws[0]
	switch b.form {
	case convHybrid:
		c := ws[1]
		wt := b.node("Transpose", []string{w}, []int64{c, o, 3, 3}, attrInts("perm", 1, 0, 2, 3))
		return b.node("Conv", []string{dy, b.rot180(wt)}, s, attrInts("kernel_shape", 3, 3), attrInts("pads", 1, 1, 1, 1))
	case convGEMMConvDX:
		c := ws[3]
		// OHWI [O,3,3,C] → [C,O,3,3], then rotated.
		wt := b.node("Transpose", []string{w}, []int64{c, o, 3, 3}, attrInts("perm", 3, 0, 1, 2))
		dyn := b.node("Transpose", []string{dy}, []int64{s[0], o, s[1], s[2]}, attrInts("perm", 0, 3, 1, 2))
		dx := b.node("Conv", []string{dyn, b.rot180(wt)}, []int64{s[0], c, s[1], s[2]}, attrInts("kernel_shape", 3, 3), attrInts("pads", 1, 1, 1, 1))
		return b.node("Transpose", []string{dx}, s, attrInts("perm", 0, 2, 3, 1))
	}
	c := ws[3]
	// W_rot[(k', o), c] = W[o, 8−k', c]: an im2col of dY times it.
	w9 := b.node("Reshape", []string{w, b.constInts(o, 9, c)}, []int64{o, 9, c})
	rev := b.node("Gather", []string{w9, b.constInts(8, 7, 6, 5, 4, 3, 2, 1, 0)}, []int64{o, 9, c}, attrInt("axis", 1))
	tr := b.node("Transpose", []string{rev}, []int64{9, o, c}, attrInts("perm", 1, 0, 2))
	wf := b.node("Reshape", []string{tr, b.constInts(9*o, c)}, []int64{9 * o, c})
	dx2 := b.node("MatMul", []string{b.im2col(dy), wf}, []int64{batchDim, c})
	return b.node("Reshape", []string{dx2, b.constInts(-1, s[1], s[2], c)}, s)
}

// rot180 reverses the two kernel axes of an OIHW weight.
func (b *graphBuilder) rot180(w string) string {
	return b.node("Slice", []string{w, b.constInts(2, 2), b.constInts(-4, -4), b.constInts(2, 3), b.constInts(-1, -1)}, b.shape(w))
}

// maxPool2x2 is MaxPool kernel 2 stride 2 (floor) written as a reshape
// that splits each spatial axis into (n/2, 2) and a ReduceMax over the
// 2s, in either layout (ONNX's MaxPool is NCHW only and its gradient would
// need its indices output).
func (b *graphBuilder) maxPool2x2(x string) string {
	s := b.shape(x)
	ha, nchw := 1, b.form.nchw()
	if nchw {
		ha = 2
	}
	h, w := s[ha], s[ha+1]
	h2, w2 := h/2, w/2
	xe := x
	if h%2 != 0 || w%2 != 0 {
		es := append([]int64(nil), s...)
		es[ha], es[ha+1] = 2*h2, 2*w2
		xe = b.node("Slice", []string{x, b.constInts(0, 0), b.constInts(2*h2, 2*w2), b.constInts(int64(ha), int64(ha+1))}, es)
	}
	var split, kept, out []int64
	var axes []int64
	if nchw {
		split = []int64{s[0], s[1], h2, 2, w2, 2}
		kept = []int64{s[0], s[1], h2, 1, w2, 1}
		out = []int64{s[0], s[1], h2, w2}
		axes = []int64{3, 5}
	} else {
		split = []int64{s[0], h2, 2, w2, 2, s[3]}
		kept = []int64{s[0], h2, 1, w2, 1, s[3]}
		out = []int64{s[0], h2, w2, s[3]}
		axes = []int64{2, 4}
	}
	xr := b.node("Reshape", []string{xe, b.constInts(withFreeBatch(split)...)}, split)
	mk := b.node("ReduceMax", []string{xr}, kept, attrInts("axes", axes...), attrInt("keepdims", 1))
	y := b.node("Reshape", []string{mk, b.constInts(withFreeBatch(out)...)}, out)
	b.record("MaxPool2x2", []string{x}, []string{y}, map[string]string{"xr": xr, "max": mk})
	return y
}

// withFreeBatch is a Reshape target: the batch dimension becomes −1.
func withFreeBatch(s []int64) []int64 {
	t := append([]int64(nil), s...)
	t[0] = -1
	return t
}

// maxPoolGrad routes each window's gradient to the inputs equal to the
// window's maximum. Ties between positive values, the only ones where this
// differs from PyTorch's first-maximum choice, do not occur in float32
// practice; ties at zero come from Relu, which passes no gradient there.
func maxPoolGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	x := n.in[0]
	s := b.shape(x)
	xr, mk := n.saved["xr"], n.saved["max"]
	dyr := b.node("Reshape", []string{dOut[0], b.constInts(withFreeBatch(b.shape(mk))...)}, b.shape(mk))
	eq := b.node("Equal", []string{xr, mk}, b.shape(xr))
	dxr := b.node("Where", []string{eq, dyr, b.constFloat(0)}, b.shape(xr))
	ha := 1
	if b.form.nchw() {
		ha = 2
	}
	es := append([]int64(nil), s...)
	es[ha], es[ha+1] = s[ha]/2*2, s[ha+1]/2*2
	dx := b.node("Reshape", []string{dxr, b.constInts(withFreeBatch(es)...)}, es)
	if es[ha] != s[ha] || es[ha+1] != s[ha+1] {
		pads := make([]int64, 8)
		pads[4+ha], pads[4+ha+1] = s[ha]-es[ha], s[ha+1]-es[ha+1]
		dx = b.node("Pad", []string{dx, b.constInts(pads...)}, s)
	}
	return []string{dx}
}

// globalAveragePool averages over the spatial axes: [B,C].
func (b *graphBuilder) globalAveragePool(x string) string {
	s := b.shape(x)
	var y string
	if b.form.nchw() {
		y = b.node("ReduceMean", []string{x}, []int64{s[0], s[1]}, attrInts("axes", 2, 3), attrInt("keepdims", 0))
	} else {
		y = b.node("ReduceMean", []string{x}, []int64{s[0], s[3]}, attrInts("axes", 1, 2), attrInt("keepdims", 0))
	}
	b.record("GlobalAveragePool", []string{x}, []string{y}, nil)
	return y
}

func gapGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	x := n.in[0]
	s := b.shape(x)
	var r string
	var area int64
	if b.form.nchw() {
		r = b.node("Reshape", []string{dOut[0], b.constInts(-1, s[1], 1, 1)}, []int64{s[0], s[1], 1, 1})
		area = s[2] * s[3]
	} else {
		r = b.node("Reshape", []string{dOut[0], b.constInts(-1, 1, 1, s[3])}, []int64{s[0], 1, 1, s[3]})
		area = s[1] * s[2]
	}
	sc := b.node("Mul", []string{r, b.constFloat(1 / float32(area))}, b.shape(r))
	shp := b.node("Shape", []string{x}, []int64{4})
	return []string{b.node("Expand", []string{sc, shp}, s)}
}
