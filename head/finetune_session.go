package head

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// ftSession owns the ONNX Runtime sessions of a fine-tuning run and every
// tensor they read and write. The parameters and optimizer moments exist in
// two sets: a step reads set cur and writes the updated values straight
// into set 1−cur (onnxruntime_go binds preallocated outputs), then the sets
// swap, so no step copies a parameter. Frozen parameters are only read and
// exist once.
type ftSession struct {
	// tg is the training graph, or, in an evaluation-only session, the
	// eval graph itself (same parameters, no moments, no train session).
	tg, eg      *traingraph.Graph
	evalOnly    bool
	train, eval *ort.DynamicAdvancedSession
	runOpts     *ort.RunOptions
	stopWatch   func() bool
	// mu orders a cancellation's Terminate before Close's Destroy of the
	// run options: the context fires on its own goroutine.
	mu       sync.Mutex
	device   ortlib.Device
	fallback string

	params  [2][]*ort.Tensor[float32]   // by tg.Params index
	moments [2][][]*ort.Tensor[float32] // [set][tg.Params index][moment]; nil when frozen
	cur     int

	// The scalar inputs, by graph input name.
	scalars map[string]*ort.Tensor[float32]
	batches map[int]*ftBatch

	owned []ort.Value // every tensor, for Close
}

// ftBatch holds the per-batch tensors for one batch size, and the input and
// output lists of both parameter sets.
type ftBatch struct {
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

func newFTSession(ctx context.Context, spec traingraph.Spec, opts ortlib.Options) (*ftSession, error) {
	return openFTSession(ctx, spec, opts, false)
}

// newFTEvalSession runs only the eval graph: evaluating a fine-tuned run
// needs neither the train step (whose compilation is the slow part) nor
// the second parameter set and the optimizer moments.
func newFTEvalSession(ctx context.Context, spec traingraph.Spec, opts ortlib.Options) (*ftSession, error) {
	return openFTSession(ctx, spec, opts, true)
}

func openFTSession(ctx context.Context, spec traingraph.Spec, opts ortlib.Options, evalOnly bool) (s *ftSession, err error) {
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
	s = &ftSession{tg: tg, eg: eg, evalOnly: evalOnly, scalars: map[string]*ort.Tensor[float32]{}, batches: map[int]*ftBatch{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	so, dev, why, err := ortlib.SessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("head: fine-tune session: %w", err)
	}
	defer so.Destroy()
	s.device, s.fallback = dev, why
	for _, g := range []struct {
		tg  *traingraph.Graph
		dst **ort.DynamicAdvancedSession
	}{{tg, &s.train}, {eg, &s.eval}} {
		if evalOnly && g.dst == &s.train {
			continue
		}
		b, err := models.Marshal(g.tg.Model)
		if err != nil {
			return nil, err
		}
		*g.dst, err = ort.NewDynamicAdvancedSessionWithONNXData(b, g.tg.Inputs, g.tg.Outputs, so)
		if err != nil {
			return nil, fmt.Errorf("head: load the generated %s graph: %w", g.tg.Model.GetGraph().GetName(), err)
		}
	}
	if s.runOpts, err = ort.NewRunOptions(); err != nil {
		return nil, fmt.Errorf("head: run options: %w", err)
	}
	s.stopWatch = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.runOpts != nil {
			s.runOpts.Terminate()
		}
	})

	for set := range 2 {
		s.params[set] = make([]*ort.Tensor[float32], len(tg.Params))
		s.moments[set] = make([][]*ort.Tensor[float32], len(tg.Params))
		for i, p := range tg.Params {
			if set == 1 && (!p.Trainable || evalOnly) {
				s.params[1][i] = s.params[0][i]
				continue
			}
			if s.params[set][i], err = s.newTensor(p.Shape...); err != nil {
				return nil, err
			}
			if !p.Trainable {
				continue
			}
			for range tg.Moments {
				m, err := s.newTensor(p.Shape...)
				if err != nil {
					return nil, err
				}
				s.moments[set][i] = append(s.moments[set][i], m)
			}
		}
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

func isScalarInput(name string) bool {
	switch name {
	case traingraph.AdamVScaleInput, traingraph.L2Input,
		traingraph.LRInput(traingraph.GroupBlock5), traingraph.LRInput(traingraph.GroupHead),
		traingraph.DecayInput(traingraph.GroupBlock5), traingraph.DecayInput(traingraph.GroupHead):
		return true
	}
	return false
}

func (s *ftSession) newTensor(dims ...int64) (*ort.Tensor[float32], error) {
	t, err := ort.NewEmptyTensor[float32](ort.NewShape(dims...))
	if err != nil {
		return nil, fmt.Errorf("head: allocate tensor %v: %w", dims, err)
	}
	s.owned = append(s.owned, t)
	return t, nil
}

// Close releases the sessions and every tensor. It is idempotent.
func (s *ftSession) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}
	if s.train != nil {
		errs = append(errs, s.train.Destroy())
		s.train = nil
	}
	if s.eval != nil {
		errs = append(errs, s.eval.Destroy())
		s.eval = nil
	}
	s.mu.Lock()
	if s.runOpts != nil {
		errs = append(errs, s.runOpts.Destroy())
		s.runOpts = nil
	}
	s.mu.Unlock()
	for _, t := range s.owned {
		errs = append(errs, t.Destroy())
	}
	s.owned = nil
	return errors.Join(errs...)
}

// batch returns the tensors for batches of n maps, making them once.
func (s *ftSession) batch(n int) (*ftBatch, error) {
	if b, ok := s.batches[n]; ok {
		return b, nil
	}
	spec := s.tg.Spec
	c, h, w, k := int64(spec.Channels), int64(spec.Height), int64(spec.Width), int64(spec.Classes)
	b := &ftBatch{n: n}
	raw := make([]byte, 2*int64(n)*c*h*w)
	// The float16 tensor is refilled in place from the cache's map; its
	// Go view is the same memory as []uint16 (Go aligns this allocation).
	b.mapsBits = unsafe.Slice((*uint16)(unsafe.Pointer(&raw[0])), len(raw)/2)
	mt, err := ort.NewCustomDataTensor(ort.NewShape(int64(n), c, h, w), raw, ort.TensorElementDataTypeFloat16)
	if err != nil {
		return nil, fmt.Errorf("head: allocate maps tensor: %w", err)
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
			panic("head: unexpected eval output " + name)
		}
	}
	s.batches[n] = b
	return b, nil
}

// inputValue is the tensor behind a graph input when set holds the
// current parameters.
func (s *ftSession) inputValue(b *ftBatch, set int, name string, index map[string]int) ort.Value {
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
	panic("head: unexpected graph input " + name)
}

// outputValue is the tensor a train-step output goes to: the other set.
func (s *ftSession) outputValue(b *ftBatch, set int, name string, index map[string]int) ort.Value {
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
	panic("head: unexpected graph output " + name)
}

// stepScalars sets the optimizer inputs for Adam step t (from 1).
func (s *ftSession) stepScalars(st FineTuneSettings, t int) {
	set := func(name string, v float64) {
		if x, ok := s.scalars[name]; ok {
			x.GetData()[0] = float32(v)
		}
	}
	lr := map[string]float64{traingraph.GroupHead: st.LR, traingraph.GroupBlock5: st.Block5LR}
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
func (b *ftBatch) fillMaps(d *MapsData, rows []int32) {
	size := d.mapSize()
	for i, r := range rows {
		copy(b.mapsBits[i*size:(i+1)*size], d.Maps[int(r)*size:(int(r)+1)*size])
	}
}

// step runs one train step on the filled batch and swaps the sets.
func (s *ftSession) step(b *ftBatch) error {
	if err := s.train.RunWithOptions(b.trainIn[s.cur], b.trainOut[s.cur], s.runOpts); err != nil {
		return fmt.Errorf("head: train step: %w", err)
	}
	s.cur = 1 - s.cur
	return nil
}

// evaluate runs the eval graph on the filled batch with the current
// parameters; b.probs, b.features and the eval logits (b.evalOut[0]) hold
// the results.
func (s *ftSession) evaluate(b *ftBatch) error {
	if err := s.eval.RunWithOptions(b.evalIn[s.cur], b.evalOut, s.runOpts); err != nil {
		return fmt.Errorf("head: evaluate: %w", err)
	}
	return nil
}

func (b *ftBatch) evalLogits() []float32 { return b.evalOut[0].(*ort.Tensor[float32]).GetData() }

// load copies w's parameters (torchvision layout) into the current set;
// moments, when given by name, too (missing ones are zeroed).
func (s *ftSession) load(w *Weights, moments map[string]Tensor) error {
	for i, p := range s.tg.Params {
		t, ok := w.Tensors[p.Name]
		if !ok || len(t.Data) != p.Size() {
			return fmt.Errorf("head: no %s of %d values to start from", p.Name, p.Size())
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
				return fmt.Errorf("head: checkpoint moment %s has %d values, want %d", traingraph.MomentName(p.Name, m), len(mt.Data), len(dst))
			default:
				p.FromTorchvision(dst, mt.Data)
			}
		}
	}
	return nil
}

// weights copies the current parameters out in torchvision/Keras layout.
func (s *ftSession) weights(classes []string) *Weights {
	w := &Weights{Classes: append([]string(nil), classes...), Tensors: map[string]Tensor{}}
	for i, p := range s.tg.Params {
		t := Tensor{Shape: torchShape(p), Data: make([]float32, p.Size())}
		p.ToTorchvision(t.Data, s.params[s.cur][i].GetData())
		w.Tensors[p.Name] = t
	}
	return w
}

// momentTensors copies the current moments out by MomentName, in
// torchvision layout.
func (s *ftSession) momentTensors() map[string]Tensor {
	out := map[string]Tensor{}
	for i, p := range s.tg.Params {
		if !p.Trainable {
			continue
		}
		for j, m := range s.tg.Moments {
			t := Tensor{Shape: torchShape(p), Data: make([]float32, p.Size())}
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
