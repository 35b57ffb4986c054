package finetune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// session owns the ONNX Runtime sessions of a fine-tuning run and every
// tensor they read and write. The parameters and optimizer moments exist in
// two sets: a step reads set cur and writes the updated values straight
// into set 1−cur (onnxruntime_go binds preallocated outputs), then the sets
// swap, so no step copies a parameter. Frozen parameters are only read and
// exist once.
type session struct {
	// tg is the training graph, or, in an evaluation-only session, the
	// eval graph itself (same parameters, no moments, no train session).
	tg, eg      *traingraph.Graph
	evalOnly    bool
	train, eval *ort.DynamicAdvancedSession
	// runOpts let a cancelled context terminate the run in flight
	// (ortlib.RunWithContext).
	runOpts  *ort.RunOptions
	device   ortlib.Device
	fallback string

	params  [2][]*ort.Tensor[float32]   // by tg.Params index
	moments [2][][]*ort.Tensor[float32] // [set][tg.Params index][moment]; nil when frozen
	cur     int

	// The scalar inputs, by graph input name.
	scalars map[string]*ort.Tensor[float32]
	batches map[int]*batchTensors

	owned []ort.Value // every tensor, for Close
}

// batchTensors holds the per-batch tensors for one batch size, and the input and
// output lists of both parameter sets.
type batchTensors struct {
	n        int
	maps     *ort.CustomDataTensor
	mapsBits []uint16 // the float16 tensor's data
	labels   *ort.Tensor[float32]
	mask     *ort.Tensor[float32]
	loss     *ort.Tensor[float32]
	logits   *ort.Tensor[float32]
	probs    *ort.Tensor[float32]
	features *ort.Tensor[float32]
	trainIn  [2][]ort.Value
	trainOut [2][]ort.Value
	evalIn   [2][]ort.Value
	evalOut  []ort.Value
}

func newSession(spec traingraph.Spec, opts ortlib.Options) (*session, error) {
	return openSession(spec, opts, false)
}

// newEvalSession runs only the eval graph: evaluating a fine-tuned run
// needs neither the train step (whose compilation is the slow part) nor
// the second parameter set and the optimizer moments.
func newEvalSession(spec traingraph.Spec, opts ortlib.Options) (*session, error) {
	return openSession(spec, opts, true)
}

func openSession(spec traingraph.Spec, opts ortlib.Options, evalOnly bool) (s *session, err error) {
	eg, err := traingraph.Eval(spec)
	if err != nil {
		return nil, err
	}
	tg := eg
	if !evalOnly {
		if tg, err = traingraph.TrainStep(spec); err != nil {
			return nil, err
		}
	}
	s = &session{tg: tg, eg: eg, evalOnly: evalOnly, scalars: map[string]*ort.Tensor[float32]{}, batches: map[int]*batchTensors{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startSessions(opts); err != nil {
		return nil, err
	}
	if err := s.allocParams(); err != nil {
		return nil, err
	}
	for _, name := range tg.Inputs {
		if isScalarInput(name) {
			if s.scalars[name], err = s.newTensor(1); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// startSessions loads the graphs into ONNX Runtime sessions on the device
// opts asks for and makes the run options.
func (s *session) startSessions(opts ortlib.Options) error {
	so, dev, why, err := ortlib.SessionOptions(opts)
	if err != nil {
		return fmt.Errorf("finetune: session: %w", err)
	}
	defer so.Destroy()
	s.device, s.fallback = dev, why
	for _, g := range []struct {
		tg  *traingraph.Graph
		dst **ort.DynamicAdvancedSession
	}{{s.tg, &s.train}, {s.eg, &s.eval}} {
		if s.evalOnly && g.dst == &s.train {
			continue
		}
		b, err := models.Marshal(g.tg.Model)
		if err != nil {
			return err
		}
		*g.dst, err = ort.NewDynamicAdvancedSessionWithONNXData(b, g.tg.Inputs, g.tg.Outputs, so)
		if err != nil {
			return fmt.Errorf("finetune: load the generated %s graph: %w", g.tg.Model.GetGraph().GetName(), err)
		}
	}
	if s.runOpts, err = ort.NewRunOptions(); err != nil {
		return fmt.Errorf("finetune: run options: %w", err)
	}
	return nil
}

// allocParams makes the parameter and moment tensors of both sets; frozen
// parameters (and every parameter of an eval-only session) exist once.
func (s *session) allocParams() error {
	tg := s.tg
	for set := range 2 {
		s.params[set] = make([]*ort.Tensor[float32], len(tg.Params))
		s.moments[set] = make([][]*ort.Tensor[float32], len(tg.Params))
		for i, p := range tg.Params {
			if set == 1 && (!p.Trainable || s.evalOnly) {
				s.params[1][i] = s.params[0][i]
				continue
			}
			var err error
			if s.params[set][i], err = s.newTensor(p.Shape...); err != nil {
				return err
			}
			if !p.Trainable {
				continue
			}
			for range tg.Moments {
				m, err := s.newTensor(p.Shape...)
				if err != nil {
					return err
				}
				s.moments[set][i] = append(s.moments[set][i], m)
			}
		}
	}
	return nil
}

func isScalarInput(name string) bool {
	switch name {
	case traingraph.AdamVScaleInput, traingraph.L2Input,
		traingraph.LRInput(traingraph.GroupBlock5), traingraph.LRInput(traingraph.GroupHead),
		traingraph.DecayInput(traingraph.GroupBlock5), traingraph.DecayInput(traingraph.GroupHead):
		return true
	}
	return false
}

func (s *session) newTensor(dims ...int64) (*ort.Tensor[float32], error) {
	t, err := ort.NewEmptyTensor[float32](ort.NewShape(dims...))
	if err != nil {
		return nil, fmt.Errorf("finetune: allocate tensor %v: %w", dims, err)
	}
	s.owned = append(s.owned, t)
	return t, nil
}

// Close releases the sessions and every tensor. It is idempotent.
func (s *session) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.train != nil {
		errs = append(errs, s.train.Destroy())
		s.train = nil
	}
	if s.eval != nil {
		errs = append(errs, s.eval.Destroy())
		s.eval = nil
	}
	if s.runOpts != nil {
		errs = append(errs, s.runOpts.Destroy())
		s.runOpts = nil
	}
	for _, t := range s.owned {
		errs = append(errs, t.Destroy())
	}
	s.owned = nil
	return errors.Join(errs...)
}

// batch returns the tensors for batches of n maps, making them once.
func (s *session) batch(n int) (*batchTensors, error) {
	if b, ok := s.batches[n]; ok {
		return b, nil
	}
	spec := s.tg.Spec
	c, h, w, k := int64(spec.Channels), int64(spec.Height), int64(spec.Width), int64(spec.Classes)
	b := &batchTensors{n: n}
	raw := make([]byte, 2*int64(n)*c*h*w)
	// The float16 tensor is refilled in place from the cache's map; its
	// Go view is the same memory as []uint16 (Go aligns this allocation).
	b.mapsBits = unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), len(raw)/2)
	mt, err := ort.NewCustomDataTensor(ort.NewShape(int64(n), c, h, w), raw, ort.TensorElementDataTypeFloat16)
	if err != nil {
		return nil, fmt.Errorf("finetune: allocate maps tensor: %w", err)
	}
	s.owned = append(s.owned, mt)
	b.maps = mt
	nb := int64(n)
	for _, x := range []struct {
		dst  **ort.Tensor[float32]
		dims []int64
	}{
		{&b.labels, []int64{nb, k}},
		{&b.loss, []int64{1}},
		{&b.logits, []int64{nb, k}},
		{&b.probs, []int64{nb, k}},
		{&b.features, []int64{nb, c}},
	} {
		if *x.dst, err = s.newTensor(x.dims...); err != nil {
			return nil, err
		}
	}
	if spec.Dropout {
		if b.mask, err = s.newTensor(nb, int64(spec.MaskWidth())); err != nil {
			return nil, err
		}
	}
	// Train and eval logits must not share a tensor: a validation pass
	// would overwrite the logits the epoch's accounting still reads.
	evalLogits, err := s.newTensor(nb, k)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, p := range s.tg.Params {
		index[p.Name] = i
	}
	for set := range 2 {
		if !s.evalOnly {
			for _, name := range s.tg.Inputs {
				b.trainIn[set] = append(b.trainIn[set], s.inputValue(b, set, name, index))
			}
			for _, name := range s.tg.Outputs {
				b.trainOut[set] = append(b.trainOut[set], s.outputValue(b, set, name, index))
			}
		}
		for _, name := range s.eg.Inputs {
			b.evalIn[set] = append(b.evalIn[set], s.inputValue(b, set, name, index))
		}
	}
	for _, name := range s.eg.Outputs {
		switch name {
		case traingraph.LogitsOutput:
			b.evalOut = append(b.evalOut, evalLogits)
		case traingraph.ProbsOutput:
			b.evalOut = append(b.evalOut, b.probs)
		case traingraph.FeaturesOutput:
			b.evalOut = append(b.evalOut, b.features)
		default:
			panic("finetune: unexpected eval output " + name)
		}
	}
	s.batches[n] = b
	return b, nil
}

// inputValue is the tensor behind a graph input when set holds the
// current parameters.
func (s *session) inputValue(b *batchTensors, set int, name string, index map[string]int) ort.Value {
	switch name {
	case traingraph.MapsInput:
		return b.maps
	case traingraph.LabelsInput:
		return b.labels
	case traingraph.MaskInput:
		return b.mask
	}
	if t, ok := s.scalars[name]; ok {
		return t
	}
	if i, ok := index[name]; ok {
		return s.params[set][i]
	}
	for i, p := range s.tg.Params {
		for j, m := range s.tg.Moments {
			if p.Trainable && name == traingraph.MomentName(p.Name, m) {
				return s.moments[set][i][j]
			}
		}
	}
	panic("finetune: unexpected graph input " + name)
}

// outputValue is the tensor a train-step output goes to: the other set.
func (s *session) outputValue(b *batchTensors, set int, name string, index map[string]int) ort.Value {
	switch name {
	case traingraph.LossOutput:
		return b.loss
	case traingraph.LogitsOutput:
		return b.logits
	}
	for i, p := range s.tg.Params {
		if name == traingraph.NextName(p.Name) {
			return s.params[1-set][i]
		}
		for j, m := range s.tg.Moments {
			if p.Trainable && name == traingraph.NextName(traingraph.MomentName(p.Name, m)) {
				return s.moments[1-set][i][j]
			}
		}
	}
	panic("finetune: unexpected graph output " + name)
}

// stepScalars sets the optimizer inputs for Adam step t (from 1), whose
// learning rates are the settings' times factor (the schedule's).
func (s *session) stepScalars(st Settings, t int, factor float64) {
	set := func(name string, v float64) {
		if x, ok := s.scalars[name]; ok {
			x.GetData()[0] = float32(v)
		}
	}
	lr := map[string]float64{traingraph.GroupHead: st.LR * factor, traingraph.GroupBlock5: st.Block5LR * factor}
	for g, r := range lr {
		step := r
		if st.Optimizer == OptimizerAdam {
			step = r / (1 - math.Pow(traingraph.AdamBeta1, float64(t)))
		}
		set(traingraph.LRInput(g), step)
		set(traingraph.DecayInput(g), 1-r*st.WeightDecay)
	}
	set(traingraph.AdamVScaleInput, 1/math.Sqrt(1-math.Pow(traingraph.AdamBeta2, float64(t))))
	set(traingraph.L2Input, st.L2)
}

// fillMaps copies the float16 maps of rows into the batch's tensor.
func (b *batchTensors) fillMaps(d *MapsData, rows []int32) {
	size := d.mapSize()
	for i, r := range rows {
		copy(b.mapsBits[i*size:(i+1)*size], d.Maps[int(r)*size:(int(r)+1)*size])
	}
}

// step runs one train step on the filled batch and swaps the sets. A
// cancelled ctx stops the step in flight and leaves the sets as they were.
func (s *session) step(ctx context.Context, b *batchTensors) error {
	if err := ortlib.RunWithContext(ctx, s.runOpts, func() error {
		return s.train.RunWithOptions(b.trainIn[s.cur], b.trainOut[s.cur], s.runOpts)
	}); err != nil {
		return fmt.Errorf("finetune: train step: %w", err)
	}
	s.cur = 1 - s.cur
	return nil
}

// evaluate runs the eval graph on the filled batch with the current
// parameters; b.probs, b.features and the eval logits (b.evalOut[0]) hold
// the results.
func (s *session) evaluate(ctx context.Context, b *batchTensors) error {
	if err := ortlib.RunWithContext(ctx, s.runOpts, func() error {
		return s.eval.RunWithOptions(b.evalIn[s.cur], b.evalOut, s.runOpts)
	}); err != nil {
		return fmt.Errorf("finetune: evaluate: %w", err)
	}
	return nil
}

func (b *batchTensors) evalLogits() []float32 { return b.evalOut[0].(*ort.Tensor[float32]).GetData() }

// load copies w's parameters (torchvision layout) into the current set;
// moments, when given by name, too (missing ones are zeroed).
func (s *session) load(w *head.Weights, moments map[string]head.Tensor) error {
	for i, p := range s.tg.Params {
		t, ok := w.Tensors[p.Name]
		if !ok || len(t.Data) != p.Size() {
			return fmt.Errorf("finetune: no %s of %d values to start from", p.Name, p.Size())
		}
		p.FromTorchvision(s.params[s.cur][i].GetData(), t.Data)
		for j, m := range s.tg.Moments {
			if !p.Trainable {
				continue
			}
			dst := s.moments[s.cur][i][j].GetData()
			mt, ok := moments[traingraph.MomentName(p.Name, m)]
			switch {
			case !ok:
				clear(dst)
			case len(mt.Data) != len(dst):
				return fmt.Errorf("finetune: checkpoint moment %s has %d values, want %d", traingraph.MomentName(p.Name, m), len(mt.Data), len(dst))
			default:
				p.FromTorchvision(dst, mt.Data)
			}
		}
	}
	return nil
}

// weights copies the current parameters out in torchvision/Keras layout.
func (s *session) weights(classes []string) *head.Weights {
	w := &head.Weights{Classes: append([]string(nil), classes...), Tensors: map[string]head.Tensor{}}
	for i, p := range s.tg.Params {
		t := head.Tensor{Shape: torchShape(p), Data: make([]float32, p.Size())}
		p.ToTorchvision(t.Data, s.params[s.cur][i].GetData())
		w.Tensors[p.Name] = t
	}
	return w
}

// momentTensors copies the current moments out by MomentName, in
// torchvision layout.
func (s *session) momentTensors() map[string]head.Tensor {
	out := map[string]head.Tensor{}
	for i, p := range s.tg.Params {
		if !p.Trainable {
			continue
		}
		for j, m := range s.tg.Moments {
			t := head.Tensor{Shape: torchShape(p), Data: make([]float32, p.Size())}
			p.ToTorchvision(t.Data, s.moments[s.cur][i][j].GetData())
			out[traingraph.MomentName(p.Name, m)] = t
		}
	}
	return out
}

// torchShape is p's shape in torchvision layout.
func torchShape(p traingraph.Param) []int {
	dims := make([]int, len(p.Shape))
	for i, d := range p.Shape {
		dims[i] = int(d)
	}
	switch p.Layout {
	case traingraph.LayoutOHWI:
		dims = []int{dims[0], dims[3], 3, 3}
	case traingraph.LayoutHWIO:
		dims = []int{dims[3], dims[2], 3, 3}
	}
	return dims
}
