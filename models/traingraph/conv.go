package traingraph

import (
	"fmt"
	"slices"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// convForm is how the training graph computes block5's convolutions and
// their gradients. ONNX Runtime's CPU Conv kernel runs a 3×3 convolution
// with an internal, cache-blocked im2col; a Gemm reaches higher GFLOP/s but
// needs the im2col matrix (9× the activations) written out by Gather or
// Slice+Concat, which is memory-bound. The weight gradient has no fast Conv
// form (the transposed-Conv trick runs a GEMM with 9 output columns), so
// every form computes it as a Gemm. Spec.Conv names the form (the zero
// value is the default); the benchmarks in bench_test.go and the profiler
// in internal/profilestep compare them.
type convForm int

const (
	// convWinograd (the default for even map sides) computes the forward
	// pass, dX and dW with Winograd's F(2×2, 3×3): 4×4 input tiles
	// gathered from the padded NHWC activations and transformed by one
	// small MatMul, 16 batched GEMMs with 2.25× fewer multiply-adds than
	// direct convolution, and an output transform. The weight gradient
	// reuses the forward's transformed tiles; dX is the same pipeline on dY
	// with the rotated weight. Weights are HWIO.
	convWinograd convForm = iota
	// convGEMM keeps activations NHWC: im2col + Gemm for the forward pass,
	// the same im2col matrix for dW = dYᵀ·Xcol, and im2col(dY)·W_rot for
	// dX. Weights are OHWI. Used for odd map sides.
	convGEMM
	// convGEMMConvDX is convGEMM with dX by Conv (transposing dY to NCHW
	// and dX back), trading one im2col for two transposes.
	convGEMMConvDX
	// convHybrid keeps activations NCHW: Conv for the forward pass and
	// for dX (with the weight rotated by 180° and transposed), dW as
	// dYᵀ·im2col(X) from NHWC copies of X and dY. Weights are OIHW.
	convHybrid
)

// convFormNames are the names of the forms in Spec.Conv, by form.
var convFormNames = [...]string{
	convWinograd:   "winograd",
	convGEMM:       "gemm",
	convGEMMConvDX: "gemm_conv_dx",
	convHybrid:     "hybrid",
}

// parseConvForm reads Spec.Conv; "" is the default form.
func parseConvForm(name string) (convForm, bool) {
	if name == "" {
		return convWinograd, true
	}
	i := slices.Index(convFormNames[:], name)
	return convForm(i), i >= 0
}

// Layouts of a convolution weight in a training graph.
const (
	LayoutOIHW = "OIHW" // torchvision [O,I,3,3]
	LayoutOHWI = "OHWI" // [O,3,3,I]: row o is the im2col Gemm's column o
	LayoutHWIO = "HWIO" // [3,3,I,O]: the Winograd weight transform's right operand
)

func (f convForm) nchw() bool { return f == convHybrid }

func (f convForm) weightLayout() string {
	switch f {
	case convHybrid:
		return LayoutOIHW
	case convWinograd:
		return LayoutHWIO
	}
	return LayoutOHWI
}

// weightShape is a [c,c,3,3] convolution weight's shape in layout.
func weightShape(layout string, c int64) []int64 {
	switch layout {
	case LayoutOHWI:
		return []int64{c, 3, 3, c}
	case LayoutHWIO:
		return []int64{3, 3, c, c}
	}
	return []int64{c, c, 3, 3}
}

// effective is the form a graph of maps h×w uses: Winograd's 2×2 output
// tiles need even sides.
func (f convForm) effective(h, w int) convForm {
	if f == convWinograd && (h%2 != 0 || w%2 != 0) {
		return convGEMM
	}
	return f
}

// FromTorchvision writes a value of p given in torchvision's layout
// (convolution weights [O,I,3,3]) into dst in the graph's layout.
func (p Param) FromTorchvision(dst, src []float32) {
	if len(dst) != p.Size() || len(src) != p.Size() {
		panic("traingraph: FromTorchvision: length mismatch for " + p.Name)
	}
	idx, ok := p.layoutIndex()
	if !ok {
		copy(dst, src)
		return
	}
	for t, g := range idx {
		dst[g] = src[t]
	}
}

// ToTorchvision is the inverse of FromTorchvision.
func (p Param) ToTorchvision(dst, src []float32) {
	if len(dst) != p.Size() || len(src) != p.Size() {
		panic("traingraph: ToTorchvision: length mismatch for " + p.Name)
	}
	idx, ok := p.layoutIndex()
	if !ok {
		copy(dst, src)
		return
	}
	for t, g := range idx {
		dst[t] = src[g]
	}
}

// layoutIndex maps each torchvision index (o,i,k) of a convolution weight
// to its index in p's layout; false when the layouts agree.
func (p Param) layoutIndex() ([]int, bool) {
	var o, i int
	switch p.Layout {
	case LayoutOHWI:
		o, i = int(p.Shape[0]), int(p.Shape[3])
	case LayoutHWIO:
		o, i = int(p.Shape[3]), int(p.Shape[2])
	default:
		return nil, false
	}
	idx := make([]int, o*i*9)
	for oc := range o {
		for ic := range i {
			for k := range 9 {
				t := (oc*i+ic)*9 + k
				if p.Layout == LayoutOHWI {
					idx[t] = (oc*9+k)*i + ic
				} else {
					idx[t] = (k*i+ic)*o + oc
				}
			}
		}
	}
	return idx, true
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
		b.g.Initializer = append(b.g.Initializer, models.NewTensorInt64(idx, []int64{int64(len(tab))}, tab))
		b.consts[key] = idx
	}
	g := b.node("Gather", []string{flat, idx}, []int64{s[0], h * w * 9, c}, onnxgraph.AttrInt("axis", 1))
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
	cat := b.node("Concat", parts, []int64{s[0], h, w, 9 * c}, onnxgraph.AttrInt("axis", 3))
	return b.node("Reshape", []string{cat, b.constInts(-1, 9*c)}, []int64{batchDim, 9 * c})
}

// conv3x3 is a 3×3 convolution, stride 1, padding 1, of x (NCHW or NHWC
// as b.form says) with weight w in the form's layout and bias [O].
func (b *graphBuilder) conv3x3(x, w, bias string) string {
	s, ws := b.shape(x), b.shape(w)
	var y string
	saved := map[string]string{}
	if b.form == convWinograd {
		v := b.winogradInput(x)
		u := b.winogradWeight(w)
		m := b.node("MatMul", []string{v, u}, []int64{16, batchDim, ws[3]})
		y = b.node("Add", []string{b.winogradOutput(m, s[1], s[2]), bias}, []int64{s[0], s[1], s[2], ws[3]})
		b.record("Conv3x3", []string{x, w, bias}, []string{y}, map[string]string{"v": v})
		return y
	}
	o := ws[0]
	if b.form.nchw() {
		y = b.node("Conv", []string{x, w, bias}, []int64{s[0], o, s[2], s[3]},
			onnxgraph.AttrInts("kernel_shape", 3, 3), onnxgraph.AttrInts("pads", 1, 1, 1, 1))
	} else {
		xcol := b.im2col(x)
		w2 := b.node("Reshape", []string{w, b.constInts(o, 9*s[3])}, []int64{o, 9 * s[3]})
		y2 := b.node("Gemm", []string{xcol, w2, bias}, []int64{batchDim, o}, onnxgraph.AttrInt("transB", 1))
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
	if b.form == convWinograd {
		return winogradGrad(b, n, dOut, need)
	}
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
		t := b.node("Transpose", []string{dy}, []int64{s[0], s[2], s[3], o}, onnxgraph.AttrInts("perm", 0, 2, 3, 1))
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
			xt := b.node("Transpose", []string{x}, []int64{s[0], s[2], s[3], c}, onnxgraph.AttrInts("perm", 0, 2, 3, 1))
			xcol = b.im2col(xt)
		}
		dw2 := b.node("Gemm", []string{dy2, xcol}, []int64{o, 9 * c}, onnxgraph.AttrInt("transA", 1))
		if nchw {
			r := b.node("Reshape", []string{dw2, b.constInts(o, 3, 3, c)}, []int64{o, 3, 3, c})
			d[1] = b.node("Transpose", []string{r}, ws, onnxgraph.AttrInts("perm", 0, 3, 1, 2))
		} else {
			d[1] = b.node("Reshape", []string{dw2, b.constInts(ws...)}, ws)
		}
	}
	if need[2] {
		d[2] = b.node("ReduceSum", []string{dy2, b.constInts(0)}, []int64{o}, onnxgraph.AttrInt("keepdims", 0))
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
		wt := b.node("Transpose", []string{w}, []int64{c, o, 3, 3}, onnxgraph.AttrInts("perm", 1, 0, 2, 3))
		return b.node("Conv", []string{dy, b.rot180(wt)}, s, onnxgraph.AttrInts("kernel_shape", 3, 3), onnxgraph.AttrInts("pads", 1, 1, 1, 1))
	case convGEMMConvDX:
		c := ws[3]
		// OHWI [O,3,3,C] → [C,O,3,3], then rotated.
		wt := b.node("Transpose", []string{w}, []int64{c, o, 3, 3}, onnxgraph.AttrInts("perm", 3, 0, 1, 2))
		dyn := b.node("Transpose", []string{dy}, []int64{s[0], o, s[1], s[2]}, onnxgraph.AttrInts("perm", 0, 3, 1, 2))
		dx := b.node("Conv", []string{dyn, b.rot180(wt)}, []int64{s[0], c, s[1], s[2]}, onnxgraph.AttrInts("kernel_shape", 3, 3), onnxgraph.AttrInts("pads", 1, 1, 1, 1))
		return b.node("Transpose", []string{dx}, s, onnxgraph.AttrInts("perm", 0, 2, 3, 1))
	}
	c := ws[3]
	// W_rot[(k', o), c] = W[o, 8−k', c]: an im2col of dY times it.
	w9 := b.node("Reshape", []string{w, b.constInts(o, 9, c)}, []int64{o, 9, c})
	rev := b.node("Gather", []string{w9, b.constInts(8, 7, 6, 5, 4, 3, 2, 1, 0)}, []int64{o, 9, c}, onnxgraph.AttrInt("axis", 1))
	tr := b.node("Transpose", []string{rev}, []int64{9, o, c}, onnxgraph.AttrInts("perm", 1, 0, 2))
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
	mk := b.node("ReduceMax", []string{xr}, kept, onnxgraph.AttrInts("axes", axes...), onnxgraph.AttrInt("keepdims", 1))
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
		y = b.node("ReduceMean", []string{x}, []int64{s[0], s[1]}, onnxgraph.AttrInts("axes", 2, 3), onnxgraph.AttrInt("keepdims", 0))
	} else {
		y = b.node("ReduceMean", []string{x}, []int64{s[0], s[3]}, onnxgraph.AttrInts("axes", 1, 2), onnxgraph.AttrInt("keepdims", 0))
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

// Winograd F(2×2, 3×3) (Lavin & Gray): a 2×2 output tile of a 3×3
// correlation is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for the 4×4 input tile d. The
// two-sided transforms are linear maps of the 16 tile values, so each is
// one MatMul by a Kronecker product: winogradTB [16,16] (input),
// winogradTG [16,9] (weight), winogradTA [4,16] (output).
var (
	winogradBT = [4][4]float32{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	winogradG  = [4][3]float32{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	winogradAT = [2][4]float32{{1, 1, 1, 0}, {0, 1, -1, -1}}
)

// kron2 is the Kronecker product m⊗m of an r×c matrix, [r·r, c·c].
func kron2(r, c int, at func(i, j int) float32) []float32 {
	out := make([]float32, r*r*c*c)
	for i := range r {
		for j := range r {
			for u := range c {
				for v := range c {
					out[(i*r+j)*c*c+u*c+v] = at(i, u) * at(j, v)
				}
			}
		}
	}
	return out
}

// winogradConst returns the shared initializer of a transform matrix, or
// of its transpose.
func (b *graphBuilder) winogradConst(name string, transposed bool) string {
	key := name
	if transposed {
		key += "T"
	}
	if v, ok := b.consts[key]; ok {
		return v
	}
	var data []float32
	var rows, cols int
	switch name {
	case "TB":
		data, rows, cols = kron2(4, 4, func(i, j int) float32 { return winogradBT[i][j] }), 16, 16
	case "TG":
		data, rows, cols = kron2(4, 3, func(i, j int) float32 { return winogradG[i][j] }), 16, 9
	case "TA":
		data, rows, cols = kron2(2, 4, func(i, j int) float32 { return winogradAT[i][j] }), 4, 16
	}
	if transposed {
		t := make([]float32, len(data))
		for i := range rows {
			for j := range cols {
				t[j*rows+i] = data[i*cols+j]
			}
		}
		data, rows, cols = t, cols, rows
	}
	v := b.fresh("winograd_" + key)
	b.g.Initializer = append(b.g.Initializer, models.NewTensorFloat32(v, []int64{int64(rows), int64(cols)}, data))
	b.consts[key] = v
	b.shapes[v] = []int64{int64(rows), int64(cols)}
	return v
}

// winogradIndex is the [16, B, T] table of padded-pixel rows that the
// input tiles of every image gather: tap u of tile t of image b is row
// b·P + (2·ty+u/4)·(w+2) + 2·tx+u%4 of the flattened padded batch. The
// batch part is added at run time (the batch is symbolic); x gives it.
func (b *graphBuilder) winogradIndex(x string, h, w int64) string {
	key := fmt.Sprint("winograd_index", h, w)
	if v, ok := b.consts[key]; ok {
		return v
	}
	th, tw := h/2, w/2
	p := (h + 2) * (w + 2)
	base := make([]int64, 0, 16*th*tw)
	for u := range int64(16) {
		for ty := range th {
			for tx := range tw {
				base = append(base, (2*ty+u/4)*(w+2)+2*tx+u%4)
			}
		}
	}
	bn := b.fresh("winograd_base")
	b.g.Initializer = append(b.g.Initializer, models.NewTensorInt64(bn, []int64{16, 1, th * tw}, base))
	b.shapes[bn] = []int64{16, 1, th * tw}
	outer := b.scope
	b.scope = "winograd_index"
	batch := b.node("Shape", []string{x}, []int64{1}, onnxgraph.AttrInt("start", 0), onnxgraph.AttrInt("end", 1))
	n := b.node("Squeeze", []string{batch, b.constInts(0)}, []int64{})
	rng := b.node("Range", []string{b.constScalarInt(0), n, b.constScalarInt(1)}, []int64{batchDim})
	off := b.node("Mul", []string{rng, b.constScalarInt(p)}, []int64{batchDim})
	off3 := b.node("Reshape", []string{off, b.constInts(1, -1, 1)}, []int64{1, batchDim, 1})
	idx := b.node("Add", []string{bn, off3}, []int64{16, batchDim, th * tw})
	b.scope = outer
	b.consts[key] = idx
	return idx
}

// constScalarInt is a shared int64 scalar initializer.
func (b *graphBuilder) constScalarInt(v int64) string {
	return b.sharedConst(fmt.Sprint("s", v), "const_int", []int64{}, func(name string) *onnxpb.TensorProto {
		return models.NewTensorInt64(name, nil, []int64{v})
	})
}

// winogradInput gathers and transforms the 4×4 input tiles of NHWC x
// [B,h,w,C]: V [16, B·T, C].
func (b *graphBuilder) winogradInput(x string) string {
	s := b.shape(x)
	h, w, c := s[1], s[2], s[3]
	xp := b.node("Pad", []string{x, b.constInts(0, 1, 1, 0, 0, 1, 1, 0)}, []int64{s[0], h + 2, w + 2, c})
	flat := b.node("Reshape", []string{xp, b.constInts(-1, c)}, []int64{batchDim, c})
	d := b.node("Gather", []string{flat, b.winogradIndex(x, h, w)}, []int64{16, batchDim, h * w / 4, c}, onnxgraph.AttrInt("axis", 0))
	d2 := b.node("Reshape", []string{d, b.constInts(16, -1)}, []int64{16, batchDim})
	v := b.node("MatMul", []string{b.winogradConst("TB", false), d2}, []int64{16, batchDim})
	return b.node("Reshape", []string{v, b.constInts(16, -1, c)}, []int64{16, batchDim, c})
}

// winogradWeight transforms an HWIO weight [3,3,C,O]: U [16, C, O].
func (b *graphBuilder) winogradWeight(w string) string {
	ws := b.shape(w)
	c, o := ws[2], ws[3]
	w2 := b.node("Reshape", []string{w, b.constInts(9, c*o)}, []int64{9, c * o})
	u := b.node("MatMul", []string{b.winogradConst("TG", false), w2}, []int64{16, c * o})
	return b.node("Reshape", []string{u, b.constInts(16, c, o)}, []int64{16, c, o})
}

// winogradOutput turns the transformed products M [16, B·T, O] into the
// NHWC output [B,h,w,O].
func (b *graphBuilder) winogradOutput(m string, h, w int64) string {
	o := b.shape(m)[2]
	m2 := b.node("Reshape", []string{m, b.constInts(16, -1)}, []int64{16, batchDim})
	y := b.node("MatMul", []string{b.winogradConst("TA", false), m2}, []int64{4, batchDim})
	y6 := b.node("Reshape", []string{y, b.constInts(2, 2, -1, h/2, w/2, o)}, []int64{2, 2, batchDim, h / 2, w / 2, o})
	yt := b.node("Transpose", []string{y6}, []int64{batchDim, h / 2, 2, w / 2, 2, o}, onnxgraph.AttrInts("perm", 2, 3, 0, 4, 1, 5))
	return b.node("Reshape", []string{yt, b.constInts(-1, h, w, o)}, []int64{batchDim, h, w, o})
}

// winogradGrad: dW from the forward's transformed tiles V and the
// output transform's adjoint applied to dY (dUᵀ = dMᵀ·V per tile
// position, then the weight transform's adjoint); dX as the Winograd
// convolution of dY with the weight rotated by 180° and transposed.
func winogradGrad(b *graphBuilder, n *tapeNode, dOut []string, need []bool) []string {
	x, w := n.in[0], n.in[1]
	s, ws := b.shape(x), b.shape(w)
	h, wd, c, o := s[1], s[2], ws[2], ws[3]
	dy := dOut[0]
	d := make([]string, 3)
	if need[1] {
		// The output transform's adjoint, then dMᵀ per tile position. Two
		// transposes that keep O innermost (measured: 2.3 + 5.9 ms) beat
		// one that moves O before the tiles (19.4 ms at VGG16's size).
		r := b.node("Reshape", []string{dy, b.constInts(-1, h/2, 2, wd/2, 2, o)}, []int64{batchDim, h / 2, 2, wd / 2, 2, o})
		t := b.node("Transpose", []string{r}, []int64{2, 2, batchDim, h / 2, wd / 2, o}, onnxgraph.AttrInts("perm", 2, 4, 0, 1, 3, 5))
		t2 := b.node("Reshape", []string{t, b.constInts(4, -1)}, []int64{4, batchDim})
		dm := b.node("MatMul", []string{b.winogradConst("TA", true), t2}, []int64{16, batchDim})
		dm3 := b.node("Reshape", []string{dm, b.constInts(16, -1, o)}, []int64{16, batchDim, o})
		dmt := b.node("Transpose", []string{dm3}, []int64{16, o, batchDim}, onnxgraph.AttrInts("perm", 0, 2, 1))
		dut := b.node("MatMul", []string{dmt, n.saved["v"]}, []int64{16, o, c})
		du2 := b.node("Reshape", []string{dut, b.constInts(16, o*c)}, []int64{16, o * c})
		dw := b.node("MatMul", []string{b.winogradConst("TG", true), du2}, []int64{9, o * c})
		dw3 := b.node("Reshape", []string{dw, b.constInts(9, o, c)}, []int64{9, o, c})
		dwt := b.node("Transpose", []string{dw3}, []int64{9, c, o}, onnxgraph.AttrInts("perm", 0, 2, 1))
		d[1] = b.node("Reshape", []string{dwt, b.constInts(ws...)}, ws)
	}
	if need[2] {
		dy2 := b.node("Reshape", []string{dy, b.constInts(-1, o)}, []int64{batchDim, o})
		d[2] = b.node("ReduceSum", []string{dy2, b.constInts(0)}, []int64{o}, onnxgraph.AttrInt("keepdims", 0))
	}
	if need[0] {
		// W_rot[k', o, c] = W[8−k', c, o], as HWIO of a convolution from
		// O channels to C.
		w9 := b.node("Reshape", []string{w, b.constInts(9, c, o)}, []int64{9, c, o})
		rev := b.node("Gather", []string{w9, b.constInts(8, 7, 6, 5, 4, 3, 2, 1, 0)}, []int64{9, c, o}, onnxgraph.AttrInt("axis", 0))
		rot := b.node("Transpose", []string{rev}, []int64{3, 3, o, c}, onnxgraph.AttrInts("perm", 0, 2, 1))
		rot4 := b.node("Reshape", []string{rot, b.constInts(3, 3, o, c)}, []int64{3, 3, o, c})
		m := b.node("MatMul", []string{b.winogradInput(dy), b.winogradWeight(rot4)}, []int64{16, batchDim, c})
		d[0] = b.winogradOutput(m, h, wd)
	}
	return d
}
