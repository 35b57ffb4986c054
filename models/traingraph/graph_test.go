package traingraph

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// stepCase is one train step to compare with the reference.
type stepCase struct {
	desc    string
	spec    Spec
	batch   int
	dropout float64
	lr      [2]float64 // head, block5
	wd      float64
	l2      float64
	// smooth and weight turn the one-hot labels into (1−s)·onehot + s/K
	// times a per-example weight, as head.Settings' label smoothing and
	// class weights do.
	smooth float64
	weight bool
	t      int  // Adam step, from 1
	state  bool // random moments instead of zeros
}

func (tc stepCase) groupLR(group string) float64 {
	if group == GroupBlock5 {
		return tc.lr[1]
	}
	return tc.lr[0]
}

// stepResult holds what a train step produced and what the reference
// predicts, by output name.
type stepResult struct {
	got, want map[string][]float64
	grads     map[string][]float64 // reference gradients, graph layout
}

// runStepCase runs one train step of the generated graph and the float64
// reference from the same (float32-representable) values.
func runStepCase(t *testing.T, tc stepCase) stepResult {
	t.Helper()
	ortlibtest.Init(t)
	s := tc.spec
	rng := rand.New(rand.NewPCG(7, uint64(s.Channels)))
	net := newRefNet(rng, s.Channels, s.Height, s.Width, s.Hidden, s.Classes)
	bt := newRefBatch(rng, net, tc.batch, tc.dropout)
	tc.softenLabels(rng, bt.labels)
	tg, err := TrainStep(s)
	if err != nil {
		t.Fatal(err)
	}
	// Round every parameter to float32 so that both sides start equal.
	for _, p := range net.tensors() {
		for i := range p {
			p[i] = float64(float32(p[i]))
		}
	}
	feed := newStepFeed(tc, tg, net, &bt, rng)
	var ins []ort.Value
	for _, name := range tg.Inputs {
		ins = append(ins, feed.input(t, name))
	}
	r := newORTRun(t, tg.Model, tg.Inputs, ins, tg.Outputs)
	r.run(t)

	res := stepResult{got: map[string][]float64{}, want: map[string][]float64{}, grads: map[string][]float64{}}
	for _, name := range tg.Outputs {
		res.got[name] = toF64(r.output(t, name))
	}
	tc.reference(net, bt, tg.Params, feed.state, &res)
	return res
}

// softenLabels applies the case's label smoothing and, when it has them,
// random per-example weights to the one-hot labels [batch,K], in place.
func (tc stepCase) softenLabels(rng *rand.Rand, labels []float64) {
	k := tc.spec.Classes
	for i := range tc.batch {
		w := 1.0
		if tc.weight {
			w = 0.5 + rng.Float64()
		}
		for j := range k {
			y := &labels[i*k+j]
			*y = w * ((1-tc.smooth)**y + tc.smooth/float64(k))
		}
	}
}

// stepFeed makes the train step's input tensors from the reference net and
// batch. It rounds the batch's maps to the float16 the graph sees, and
// keeps the optimizer state it makes, by input name, for the reference.
type stepFeed struct {
	tc     stepCase
	net    *refNet
	bt     *refBatch
	rng    *rand.Rand
	params map[string]Param
	state  map[string][]float64
}

func newStepFeed(tc stepCase, tg *Graph, net *refNet, bt *refBatch, rng *rand.Rand) *stepFeed {
	f := &stepFeed{tc: tc, net: net, bt: bt, rng: rng, params: map[string]Param{}, state: map[string][]float64{}}
	for _, p := range tg.Params {
		f.params[p.Name] = p
	}
	return f
}

// input is the tensor for the graph input name.
func (f *stepFeed) input(t *testing.T, name string) ort.Value {
	tc, s := f.tc, f.tc.spec
	switch {
	case name == MapsInput:
		v, back := f16Tensor(t, toF32(f.bt.maps), int64(tc.batch), int64(s.Channels), int64(s.Height), int64(s.Width))
		for i := range back {
			f.bt.maps[i] = float64(back[i])
		}
		return v
	case name == LabelsInput:
		return f32Tensor(t, toF32(f.bt.labels), int64(tc.batch), int64(s.Classes))
	case name == MaskInput:
		return f32Tensor(t, toF32(f.bt.mask), int64(tc.batch), int64(s.MaskWidth()))
	case strings.HasPrefix(name, "lr."):
		lr := tc.groupLR(strings.TrimPrefix(name, "lr."))
		if s.Optimizer == OptimizerAdam {
			lr /= 1 - math.Pow(AdamBeta1, float64(tc.t))
		}
		return f32Tensor(t, []float32{float32(lr)}, 1)
	case name == L2Input:
		return f32Tensor(t, []float32{float32(tc.l2)}, 1)
	case name == AdamVScaleInput:
		return f32Tensor(t, []float32{float32(1 / math.Sqrt(1-math.Pow(AdamBeta2, float64(tc.t))))}, 1)
	case strings.HasPrefix(name, "decay."):
		return f32Tensor(t, []float32{float32(1 - tc.groupLR(strings.TrimPrefix(name, "decay."))*tc.wd)}, 1)
	}
	if p, ok := f.params[name]; ok {
		return f32Tensor(t, toF32(graphLayout(p, f.net.tensors()[name])), p.Shape...)
	}
	return f.moment(t, name)
}

// moment is the optimizer state input name (a parameter's first moment
// "….m" or second moment "….v"): zeros, or random moments when the case
// starts from a state.
func (f *stepFeed) moment(t *testing.T, name string) ort.Value {
	pname, moment, ok := strings.Cut(name, ".m")
	if !ok {
		pname, moment, ok = strings.Cut(name, ".v")
		moment = "v" + moment
	} else {
		moment = "m" + moment
	}
	p, pok := f.params[pname]
	if !ok || !pok || moment != "m" && moment != "v" {
		t.Fatalf("unexpected input %q", name)
	}
	vals := make([]float64, p.Size())
	if f.tc.state {
		for i := range vals {
			g := f.rng.NormFloat64() * 0.05
			if moment == "v" {
				g = g*g + 1e-4
			}
			vals[i] = float64(float32(g))
		}
	}
	f.state[name] = vals
	return f32Tensor(t, toF32(vals), p.Shape...)
}

// reference fills res.want and res.grads from the float64 reference: the
// loss, the logits, and each trainable parameter's gradient and its value
// and moments after one step from state.
func (tc stepCase) reference(net *refNet, bt refBatch, params []Param, state map[string][]float64, res *stepResult) {
	grad := net.zeroLike()
	loss, logits := net.lossAndGrad(bt.maps, bt.labels, bt.mask, bt.n, grad)
	res.want[LossOutput] = []float64{loss}
	res.want[LogitsOutput] = logits
	for _, p := range params {
		if !p.Trainable {
			continue
		}
		g := graphLayout(p, grad.tensors()[p.Name])
		res.grads[p.Name] = g
		theta := graphLayout(p, net.tensors()[p.Name])
		tc.referenceUpdate(p, theta, g, state, res.want)
	}
}

// referenceUpdate writes into want p's next value and, for optimizers with
// state, its next moments, from its value theta and gradient g.
func (tc stepCase) referenceUpdate(p Param, theta, g []float64, state, want map[string][]float64) {
	s := tc.spec
	if s.L2 && p.Kernel() {
		g = append([]float64(nil), g...)
		for i := range g {
			g[i] += tc.l2 * theta[i]
		}
	}
	lr := tc.groupLR(p.Group)
	decay := 1.0
	if s.WeightDecay {
		decay = 1 - lr*tc.wd
	}
	next := make([]float64, len(theta))
	switch {
	case s.Optimizer == OptimizerAdam:
		b1t := 1 - math.Pow(AdamBeta1, float64(tc.t))
		b2t := 1 - math.Pow(AdamBeta2, float64(tc.t))
		m0, v0 := state[MomentName(p.Name, "m")], state[MomentName(p.Name, "v")]
		m1, v1 := make([]float64, len(g)), make([]float64, len(g))
		for i := range g {
			m1[i] = AdamBeta1*m0[i] + (1-AdamBeta1)*g[i]
			v1[i] = AdamBeta2*v0[i] + (1-AdamBeta2)*g[i]*g[i]
			next[i] = decay*theta[i] - lr*(m1[i]/b1t)/(math.Sqrt(v1[i]/b2t)+AdamEpsilon)
		}
		want[NextName(MomentName(p.Name, "m"))] = m1
		want[NextName(MomentName(p.Name, "v"))] = v1
	case s.Momentum > 0:
		m0 := state[MomentName(p.Name, "m")]
		m1 := make([]float64, len(g))
		for i := range g {
			m1[i] = s.Momentum*m0[i] + g[i]
			next[i] = decay*theta[i] - lr*m1[i]
		}
		want[NextName(MomentName(p.Name, "m"))] = m1
	default:
		for i := range g {
			next[i] = decay*theta[i] - lr*g[i]
		}
	}
	want[NextName(p.Name)] = next
}

// graphLayout converts a reference tensor (torchvision layout) to the
// graph's layout, in float64.
func graphLayout(p Param, v []float64) []float64 {
	idx, ok := p.layoutIndex()
	if !ok {
		return v
	}
	out := make([]float64, len(v))
	for t, g := range idx {
		out[g] = v[t]
	}
	return out
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestTrainStepMatchesReference(t *testing.T) {
	t.Parallel()
	tiny := Spec{Channels: 4, Height: 4, Width: 4, Hidden: 8, Classes: 3, Dropout: true, Optimizer: OptimizerAdam}
	cases := []stepCase{
		{desc: "adam first step", spec: tiny, batch: 2, dropout: 0.5, lr: [2]float64{1e-3, 1e-3}, t: 1},
		{desc: "adam from state, two rates", spec: tiny, batch: 3, dropout: 0.5, lr: [2]float64{1e-3, 3e-4}, t: 5, state: true},
		{desc: "adam decoupled decay", spec: func() Spec { s := tiny; s.WeightDecay = true; return s }(),
			batch: 2, dropout: 0.5, lr: [2]float64{1e-2, 1e-3}, wd: 0.1, t: 3, state: true},
		{desc: "adam coupled l2, smoothed weighted labels", spec: func() Spec { s := tiny; s.L2 = true; return s }(),
			batch: 3, dropout: 0.5, lr: [2]float64{1e-3, 1e-3}, l2: 0.05, smooth: 0.1, weight: true, t: 2, state: true},
		{desc: "sgd momentum", spec: func() Spec { s := tiny; s.Optimizer, s.Momentum = OptimizerSGD, 0.9; return s }(),
			batch: 2, dropout: 0.5, lr: [2]float64{0.1, 0.01}, state: true},
		{desc: "plain sgd, no hidden, no dropout, odd maps",
			spec:  Spec{Channels: 3, Height: 5, Width: 3, Classes: 4, Optimizer: OptimizerSGD},
			batch: 3, lr: [2]float64{0.1, 0.1}},
		{desc: "frozen block5", spec: func() Spec { s := tiny; s.FreezeBlock5 = true; return s }(),
			batch: 2, dropout: 0.5, lr: [2]float64{1e-3, 0}, t: 2, state: true},
		{desc: "mid size", spec: Spec{Channels: 64, Height: 8, Width: 8, Hidden: 128, Classes: 5, Dropout: true, Optimizer: OptimizerAdam},
			batch: 4, dropout: 0.5, lr: [2]float64{1e-4, 1e-4}, t: 1},
	}
	if os.Getenv("TLEARN_SLOW_TESTS") != "" {
		// VGG16's real block5 (512 channels at 14×14, hidden 1024): the
		// float64 reference needs several seconds per image.
		cases = append(cases, stepCase{desc: "real size", spec: Spec{Channels: 512, Height: 14, Width: 14, Hidden: 1024, Classes: 10, Dropout: true, Optimizer: OptimizerAdam},
			batch: 1, dropout: 0.5, lr: [2]float64{1e-4, 1e-4}, t: 1})
	}
	forms := []struct {
		desc   string
		form   convForm
		slices bool
	}{
		{"winograd", convWinograd, false},
		{"gemm gather", convGEMM, false},
		{"hybrid", convHybrid, false},
		{"gemm slices", convGEMM, true},
		{"gemm conv dx", convGEMMConvDX, false},
	}
	for _, fm := range forms {
		for _, tc := range cases {
			if tc.spec.Channels >= 512 && (fm.form != 0 || fm.slices) {
				continue // the real size once, for the default formulation
			}
			tc.spec.Conv, tc.spec.sliceIm2col = convFormNames[fm.form], fm.slices
			t.Run(fm.desc+"/"+tc.desc, func(t *testing.T) { checkStepCase(t, tc) })
		}
	}
}

func checkStepCase(t *testing.T, tc stepCase) {
	res := runStepCase(t, tc)
	if len(res.got) != len(res.want) {
		t.Fatalf("graph has %d outputs, reference %d", len(res.got), len(res.want))
	}
	for name, want := range res.want {
		got, ok := res.got[name]
		if !ok {
			t.Errorf("graph has no output %q", name)
			continue
		}
		if g, ok := res.grads[strings.TrimSuffix(name, ".new")]; ok && tc.spec.Optimizer == OptimizerAdam {
			// Adam's step is lr·m̂/(√v̂+ε): with little history, a
			// gradient far below the tensor's largest is ill-conditioned
			// (its float32 rounding moves the step by a visible part of
			// lr). Those coordinates are checked through m and v only.
			got, want = wellConditioned(got, want, g)
		}
		if err := tol.Floats(got, want, 2e-5*tol.MaxAbs(want), 2e-4); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The gradients themselves: with Adam, m.new = β1·m + (1−β1)·g.
	if tc.spec.Optimizer != OptimizerAdam || tc.state {
		return
	}
	for name, g := range res.grads {
		m := res.got[NextName(MomentName(name, "m"))]
		derived := make([]float64, len(m))
		for i := range m {
			derived[i] = m[i] / (1 - AdamBeta1)
		}
		if err := tol.Floats(derived, g, 2e-5*tol.MaxAbs(g), 2e-4); err != nil {
			t.Errorf("gradient of %s: %v", name, err)
		}
		if allZero(g) {
			t.Errorf("gradient of %s is zero: the case tests nothing", name)
		}
	}
}

// wellConditioned keeps the values whose gradient is at least 1e-3 of the
// largest.
func wellConditioned(got, want, g []float64) ([]float64, []float64) {
	scale := tol.MaxAbs(g)
	var gs, ws []float64
	for i, v := range g {
		if math.Abs(v) >= 1e-3*scale {
			gs, ws = append(gs, got[i]), append(ws, want[i])
		}
	}
	return gs, ws
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// The rules graph of TestGenericGradRules: logits = (a·w + c) ⊙ m, with
// a [n,d], w [d,k], c [k] and m [n,1] broadcast over the columns.
const rulesN, rulesD, rulesK = 3, 4, 5

var rulesParams = []string{"a", "w", "c", "m"}

// TestGenericGradRules checks the rules the block5 graph does not use
// (MatMul, Add with broadcasting, Mul of two differentiable values) on a
// small graph, against central differences of a float64 forward pass.
func TestGenericGradRules(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	const n, k = rulesN, rulesK
	rng := rand.New(rand.NewPCG(3, 3))
	b := newGraphBuilder("rules")
	vals, shapes := rulesInputs(b, rng)
	labels := b.input("labels", onnxpb.TensorProto_FLOAT, []int64{n, k})
	y := make([]float64, n*k)
	for i := range n {
		y[i*k+rng.IntN(k)] = 1
	}
	outs := rulesOutputs(b, labels)
	var ins []ort.Value
	var inNames []string
	for _, name := range rulesParams {
		ins = append(ins, f32Tensor(t, toF32(vals[name]), shapes[name]...))
		inNames = append(inNames, name)
	}
	ins = append(ins, f32Tensor(t, toF32(y), n, k))
	inNames = append(inNames, "labels")
	r := newORTRun(t, b.model("rules"), inNames, ins, outs)
	r.run(t)

	lossOf := func() float64 { return rulesLoss(vals, y) }
	if got, want := r.output(t, "loss")[0], lossOf(); !tol.Close(float64(got), want, 1e-5, 0) {
		t.Errorf("loss %g, want %g", got, want)
	}
	for _, name := range rulesParams {
		fd := centralDifferences(vals[name], lossOf)
		if err := tol.Floats(toF64(r.output(t, "d_"+name)), fd, 1e-5*tol.MaxAbs(fd), 1e-4); err != nil {
			t.Errorf("d%s: %v", name, err)
		}
	}
}

// rulesInputs declares the rules graph's differentiable inputs and draws
// their (float32-representable) values.
func rulesInputs(b *graphBuilder, rng *rand.Rand) (vals map[string][]float64, shapes map[string][]int64) {
	vals = map[string][]float64{}
	shapes = map[string][]int64{"a": {rulesN, rulesD}, "w": {rulesD, rulesK}, "c": {rulesK}, "m": {rulesN, 1}}
	for _, name := range rulesParams {
		b.input(name, onnxpb.TensorProto_FLOAT, shapes[name])
		b.needGrad[name] = true
		v := make([]float64, 1)
		for _, s := range shapes[name] {
			v = make([]float64, len(v)*int(s))
		}
		for i := range v {
			v[i] = float64(float32(rng.NormFloat64()))
		}
		vals[name] = v
	}
	return vals, shapes
}

// rulesOutputs builds the rules graph's loss against labels and its
// gradients, and returns the output names: "loss", then "d_" and each
// input's name.
func rulesOutputs(b *graphBuilder, labels string) []string {
	logits := b.mul(b.add(b.matMul("a", "w"), "c"), "m")
	loss := b.softmaxCrossEntropy(logits, labels)
	grads := b.backward(loss, rulesParams)
	b.output("loss", loss, onnxpb.TensorProto_FLOAT)
	outs := []string{"loss"}
	for i, g := range grads {
		name := "d_" + rulesParams[i]
		b.output(name, g, onnxpb.TensorProto_FLOAT)
		outs = append(outs, name)
	}
	return outs
}

// rulesLoss is the rules graph's mean softmax cross-entropy against the
// one-hot labels y [n,k], in float64.
func rulesLoss(vals map[string][]float64, y []float64) float64 {
	const n, d, k = rulesN, rulesD, rulesK
	var l float64
	for i := range n {
		z := make([]float64, k)
		mx := math.Inf(-1)
		for j := range k {
			s := vals["c"][j]
			for q := range d {
				s += vals["a"][i*d+q] * vals["w"][q*k+j]
			}
			z[j] = s * vals["m"][i]
			mx = math.Max(mx, z[j])
		}
		var sum float64
		for _, v := range z {
			sum += math.Exp(v - mx)
		}
		for j := range k {
			l -= y[i*k+j] * (z[j] - mx - math.Log(sum)) / n
		}
	}
	return l
}

// centralDifferences is the derivative of loss with respect to each
// element of v, by central differences with step 1e-6; v is restored.
func centralDifferences(v []float64, loss func() float64) []float64 {
	fd := make([]float64, len(v))
	for i := range v {
		old := v[i]
		v[i] = old + 1e-6
		lp := loss()
		v[i] = old - 1e-6
		lm := loss()
		v[i] = old
		fd[i] = (lp - lm) / 2e-6
	}
	return fd
}

func TestSpecErrors(t *testing.T) {
	t.Parallel()
	ok := Spec{Channels: 4, Height: 4, Width: 4, Classes: 3, Optimizer: OptimizerAdam}
	for _, tc := range []struct {
		desc string
		mod  func(*Spec)
		want string
	}{
		{"maps too small", func(s *Spec) { s.Height = 1 }, "2×2"},
		{"one class", func(s *Spec) { s.Classes = 1 }, "1 classes"},
		{"optimizer", func(s *Spec) { s.Optimizer = "lbfgs" }, "lbfgs"},
		{"momentum", func(s *Spec) { s.Optimizer, s.Momentum = OptimizerSGD, 1 }, "momentum"},
		{"conv form", func(s *Spec) { s.Conv = "fft" }, `conv "fft" (want winograd, gemm, gemm_conv_dx, hybrid or empty)`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := ok
			tc.mod(&s)
			for _, build := range []func(Spec) (*Graph, error){TrainStep, Eval} {
				if _, err := build(s); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want ErrSpec containing %q", err, tc.want)
				}
			}
		})
	}
	for _, conv := range []string{"", "winograd", "gemm", "gemm_conv_dx", "hybrid"} {
		s := ok
		s.Conv = conv
		if _, err := TrainStep(s); err != nil {
			t.Errorf("conv %q: %v", conv, err)
		}
	}
}
