package finetune

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// ErrData is wrapped by every error about inconsistent maps or starting
// weights.
var ErrData = errors.New("finetune: invalid data")

// ErrSettings is wrapped by the errors about invalid fine-tuning settings;
// those about the head's settings wrap head.ErrSettings.
var ErrSettings = errors.New("finetune: invalid settings")

// MapsData is a labelled set of block4_pool maps, the input of FineTune.
type MapsData struct {
	// Maps holds N maps of Shape (C, h, w), NCHW, as IEEE float16 bits: a
	// cache's maps.npy, usually its read-only memory map. FineTune only
	// copies from it.
	Maps []uint16
	// Y holds N labels in [0, len(Classes)).
	Y       []int32
	Classes []string
	Shape   [3]int // C, h, w
	// Views is K, the views of each image, when Maps holds N×K maps
	// ([N,K,C,h,w], view 0 the plain image); 0 means 1. FineTune draws
	// one view of each training image per epoch (head.DrawView);
	// validation and Evaluate average the probabilities of the views
	// (test-time augmentation), or read view 0 alone with PlainView.
	Views int
	// PlainView makes validation and Evaluate read view 0 of each image
	// alone.
	PlainView bool
}

// Len is N.
func (d *MapsData) Len() int { return len(d.Y) }

// numViews is K, at least 1.
func (d *MapsData) numViews() int { return max(1, d.Views) }

func (d *MapsData) mapSize() int { return d.Shape[0] * d.Shape[1] * d.Shape[2] }

// viewRows is the data as N×K maps of one view each, every map labelled
// with its image's label, which head.ViewSampler's rows index; d itself
// with one view.
func (d *MapsData) viewRows() *MapsData {
	k := d.numViews()
	if k == 1 {
		return d
	}
	y := make([]int32, 0, len(d.Y)*k)
	for _, l := range d.Y {
		for range k {
			y = append(y, l)
		}
	}
	return &MapsData{Maps: d.Maps, Y: y, Classes: d.Classes, Shape: d.Shape}
}

// Validate checks the shapes and that every label names a class.
func (d *MapsData) Validate() error {
	switch {
	case d == nil || len(d.Y) == 0:
		return fmt.Errorf("%w: no examples", ErrData)
	case len(d.Classes) < 2:
		return fmt.Errorf("%w: %d classes (fine-tuning needs at least 2)", ErrData, len(d.Classes))
	case d.Shape[0] <= 0 || d.Shape[1] < 2 || d.Shape[2] < 2:
		return fmt.Errorf("%w: maps of shape %v (block5 needs at least 2×2 maps)", ErrData, d.Shape)
	case d.Views < 0 || d.Views > head.MaxViews:
		return fmt.Errorf("%w: %d views per image, want 1..%d", ErrData, d.Views, head.MaxViews)
	case len(d.Maps) != d.Len()*d.numViews()*d.mapSize():
		return fmt.Errorf("%w: %d map values for %d images of %d maps of shape %v", ErrData, len(d.Maps), d.Len(), d.numViews(), d.Shape)
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= len(d.Classes) {
			return fmt.Errorf("%w: map %d has label %d, but there are %d classes", ErrData, i, y, len(d.Classes))
		}
	}
	return nil
}

// Fine-tuning defaults that differ from the head's.
const (
	DefaultEpochs   = 10
	DefaultMomentum = 0.9
)

// Optimizers of Settings.Optimizer.
const (
	OptimizerAdam = traingraph.OptimizerAdam
	OptimizerSGD  = traingraph.OptimizerSGD
)

// Settings configure FineTune. The zero value is the reference
// experiment: the tutorial's head, Adam at 1e-4 for block5 and the head
// alike, batch 32, DefaultEpochs, seed 0.
type Settings struct {
	// Settings are the head's, with the same meaning as for head.Train, except
	// that Epochs 0 means DefaultEpochs and L2 (coupled) also
	// applies to block5's kernels. Batches, initial head weights and
	// dropout masks come from the same seeded streams as Train's, so that
	// with block5 frozen both trainers take the same steps.
	head.Settings
	// Block5LR is block5's learning rate; 0 means LR (one rate for all,
	// as the tutorial).
	Block5LR float64 `json:"block5_lr"`
	// FreezeBlock5 keeps block5 fixed: the training graph computes its
	// forward pass but no gradient for it. (A learning rate of 0 would
	// still spend the backward pass.)
	FreezeBlock5 bool `json:"freeze_block5"`
	// Optimizer is OptimizerAdam ("" means it) or OptimizerSGD.
	Optimizer string `json:"optimizer"`
	// Momentum is SGD's momentum; 0 means DefaultMomentum.
	Momentum float64 `json:"momentum"`
	// NoMomentum makes SGD plain.
	NoMomentum bool `json:"no_momentum"`
	// WeightDecay is decoupled weight decay (AdamW's, applied to every
	// parameter): θ ← (1 − lr·wd)·θ before the optimizer's step. L2 is the
	// coupled alternative.
	WeightDecay float64 `json:"weight_decay"`

	// Runtime says where ONNX Runtime runs the graphs.
	Runtime ortlib.Options `json:"-"`
	// Checkpoint is the file that FineTune writes after every epoch and
	// resumes from when it exists; "" means no checkpoints.
	Checkpoint string `json:"-"`
}

// Resolve fills in the defaults.
func (s Settings) Resolve() Settings {
	if s.Epochs == 0 {
		s.Epochs = DefaultEpochs
	}
	s.Settings = s.Settings.Resolve()
	if s.Block5LR == 0 {
		s.Block5LR = s.LR
	}
	if s.Optimizer == "" {
		s.Optimizer = OptimizerAdam
	}
	switch {
	case s.Optimizer != OptimizerSGD || s.NoMomentum:
		s.Momentum = 0
	case s.Momentum == 0:
		s.Momentum = DefaultMomentum
	}
	if s.FreezeBlock5 {
		s.Block5LR = 0
	}
	return s
}

// Validate checks the resolved settings.
func (s Settings) Validate() error {
	if err := s.Settings.Validate(); err != nil {
		return err
	}
	r := s.Resolve()
	switch {
	case r.Optimizer != OptimizerAdam && r.Optimizer != OptimizerSGD:
		return fmt.Errorf("%w: optimizer %q (want %s or %s)", ErrSettings, r.Optimizer, OptimizerAdam, OptimizerSGD)
	case !r.FreezeBlock5 && !(r.Block5LR > 0):
		return fmt.Errorf("%w: block5 learning rate %g must be positive (freeze block5 instead of a rate of 0)", ErrSettings, r.Block5LR)
	case r.Momentum < 0 || r.Momentum >= 1:
		return fmt.Errorf("%w: momentum %g is outside [0, 1)", ErrSettings, r.Momentum)
	case !(r.WeightDecay >= 0) || r.WeightDecay*max(r.LR, r.Block5LR) >= 1:
		return fmt.Errorf("%w: weight decay %g must be 0 or more, and below 1/lr", ErrSettings, r.WeightDecay)
	case r.EMA != 0:
		return fmt.Errorf("%w: fine-tuning keeps no moving average of the weights (EMA %g): only the head-only trainer does", ErrSettings, r.EMA)
	}
	return nil
}

// graphSpec is the training graph for these (resolved) settings.
func (s Settings) graphSpec(shape [3]int, classes int) traingraph.Spec {
	return traingraph.Spec{
		Channels: shape[0], Height: shape[1], Width: shape[2],
		Hidden:       s.Hidden,
		Classes:      classes,
		Dropout:      s.Hidden > 0 && s.Dropout > 0,
		Optimizer:    s.Optimizer,
		Momentum:     s.Momentum,
		WeightDecay:  s.WeightDecay > 0,
		L2:           s.L2 > 0,
		FreezeBlock5: s.FreezeBlock5,
	}
}

// checkStart checks the starting weights against the data and settings:
// block5's six tensors in torchvision layout, and a head when given.
func checkStart(start *head.Weights, d *MapsData, s Settings) error {
	if start == nil {
		return fmt.Errorf("%w: no starting weights (block5's tensors are needed)", ErrData)
	}
	c := d.Shape[0]
	for i := 1; i <= 3; i++ {
		for _, x := range []struct {
			name  string
			shape []int
			size  int
		}{
			{models.Block5WeightName(i), []int{c, c, 3, 3}, c * c * 9},
			{models.Block5BiasName(i), []int{c}, c},
		} {
			t, ok := start.Tensors[x.name]
			if !ok {
				return fmt.Errorf("%w: starting weights lack %s", ErrData, x.name)
			}
			if !slices.Equal(t.Shape, x.shape) || len(t.Data) != x.size {
				return fmt.Errorf("%w: %s has shape %v, but maps with %d channels need %v (maps of another backbone?)", ErrData, x.name, t.Shape, c, x.shape)
			}
		}
	}
	if _, ok := start.Tensors[head.OutputWeight]; !ok {
		return nil
	}
	if err := start.Validate(); err != nil {
		return fmt.Errorf("%w: initial finetune: %v", ErrData, err)
	}
	switch {
	case start.InputDim() != c:
		return fmt.Errorf("%w: the initial head takes %d features, block5 gives %d (a head trained on another backbone?)", ErrData, start.InputDim(), c)
	case !slices.Equal(start.Classes, d.Classes):
		return fmt.Errorf("%w: the initial head's classes %v differ from the data's %v", ErrData, start.Classes, d.Classes)
	case start.HiddenSize() != s.Hidden:
		return fmt.Errorf("%w: the initial head has %d hidden units, the settings ask for %d", ErrData, start.HiddenSize(), s.Hidden)
	}
	return nil
}
