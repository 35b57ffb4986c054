package head

import (
	"errors"
	"fmt"
	"math"

	"github.com/tlearn/tlearn/head/internal/recipe"
)

// Reference defaults (the Keras tutorial's head and optimizer).
const (
	DefaultHidden  = 1024
	DefaultDropout = 0.5
	DefaultLR      = 1e-4
	DefaultBatch   = 32
	DefaultEpochs  = 50
)

// Adam's constants (DESIGN.md, "Adam, exactly").
const (
	adamBeta1   = 0.9
	adamBeta2   = 0.999
	adamEpsilon = 1e-7
)

// ClassWeighting says how the loss weighs the examples of each class.
type ClassWeighting int

const (
	// Unweighted counts every example once.
	Unweighted ClassWeighting = iota
	// Balanced weighs class c by N / (K · n_c), scikit-learn's "balanced",
	// so that every class contributes equally to the loss.
	Balanced
)

// String is the name used in flags and settings.json.
func (c ClassWeighting) String() string {
	switch c {
	case Unweighted:
		return "none"
	case Balanced:
		return "balanced"
	}
	return fmt.Sprintf("ClassWeighting(%d)", int(c))
}

// ParseClassWeighting reads "none" (or "") and "balanced".
func ParseClassWeighting(s string) (ClassWeighting, error) {
	switch s {
	case "", "none":
		return Unweighted, nil
	case "balanced":
		return Balanced, nil
	}
	return 0, fmt.Errorf("head: class weighting %q: want none or balanced", s)
}

// MarshalText writes the name.
func (c ClassWeighting) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads the name.
func (c *ClassWeighting) UnmarshalText(b []byte) error {
	v, err := ParseClassWeighting(string(b))
	*c = v
	return err
}

// Settings configure Train. The zero value is the reference head and
// optimizer with seed 0; fields whose zero is a meaningful choice have an
// explicit No* switch instead.
type Settings struct {
	// Hidden is the size of the hidden ReLU layer; 0 means DefaultHidden.
	Hidden int `json:"hidden"`
	// NoHidden drops the hidden layer (and with it dropout): plain softmax
	// regression on the features.
	NoHidden bool `json:"no_hidden"`
	// Dropout is the fraction of hidden units dropped during training
	// (inverted dropout: the kept ones are scaled by 1/(1-Dropout));
	// 0 means DefaultDropout.
	Dropout float64 `json:"dropout"`
	// NoDropout turns dropout off.
	NoDropout bool `json:"no_dropout"`
	// LR is Adam's learning rate; 0 means DefaultLR.
	LR float64 `json:"lr"`
	// Batch is the mini-batch size; 0 means DefaultBatch. The last batch of
	// an epoch may be smaller.
	Batch int `json:"batch"`
	// Epochs is the number of passes over the training data; 0 means
	// DefaultEpochs.
	Epochs int `json:"epochs"`
	// L2 is a coupled weight decay on the two kernels (not the biases):
	// L2·w is added to the gradient before Adam, which is the gradient of
	// L2/2·‖w‖² in the loss (PyTorch's Adam weight_decay). The reported
	// losses do not include the penalty.
	L2 float64 `json:"l2"`
	// LabelSmoothing mixes the one-hot targets with the uniform
	// distribution: target = (1-s)·onehot + s/K, as Keras does. It applies
	// to the training and the validation loss.
	LabelSmoothing float64 `json:"label_smoothing"`
	// ClassWeights weighs the training loss per class (not the
	// validation loss, as Keras' class_weight). The weighted batch loss is
	// divided by the batch size, as Keras does.
	ClassWeights ClassWeighting `json:"class_weights"`
	// Seed drives the initial weights, the shuffling and the dropout masks.
	Seed uint64 `json:"seed"`
	// NoShuffle keeps the data's row order in every epoch (class by class
	// for caches that extract writes): the tutorial's shuffle=False.
	NoShuffle bool `json:"no_shuffle"`
	// EarlyStop is the patience: training stops after this many epochs
	// without a higher validation accuracy (holdout accuracy with Holdout)
	// and the weights of the best epoch are restored. 0 turns early
	// stopping off.
	EarlyStop int `json:"early_stop"`
	// SaveBest returns the weights of the epoch with the highest validation
	// accuracy (holdout accuracy with Holdout) instead of the last epoch's
	// (Keras' save_best_only).
	SaveBest bool `json:"save_best"`
	// Holdout is the fraction of the training rows, per class, set aside
	// (CarveHoldout) to select on: the best epoch, early stopping and a
	// sweep's ranking then use the holdout's accuracy, and the validation
	// set is only reported. 0 means no holdout: they use the validation
	// set, whose accuracy is then optimistic.
	Holdout float64 `json:"holdout,omitempty"`
	// HoldoutSeed seeds the carve. It is apart from Seed so that runs
	// that differ in Seed (a sweep over seeds) select on the same rows.
	HoldoutSeed uint64 `json:"holdout_seed,omitempty"`
	// Schedule varies the learning rate over the optimizer steps:
	// ScheduleConstant (LR throughout) or ScheduleCosine (annealed from LR
	// to zero over Epochs, step by step). An early stop does not shorten
	// the schedule.
	Schedule Schedule `json:"lr_schedule,omitempty"`
	// EMA is the decay of an exponential moving average of the
	// parameters, updated after every optimizer step (Polyak averaging;
	// 0.999 averages over about a thousand steps). The average, not the
	// last step's parameters, is what validation and the holdout measure,
	// what SaveBest keeps and what the run returns: it smooths out the
	// step-to-step noise of a constant learning rate. Its decay is warmed
	// up as min(EMA, (1+t)/(10+t)) at step t, from the initial weights.
	// 0 turns it off. Only Train averages: fine-tuning refuses it.
	EMA float64 `json:"ema,omitempty"`

	// gemm overrides the matrix-product backend (tests and benchmarks
	// compare them); nil means the one chosen at start-up.
	gemm *gemmBackend
}

// Resolve returns s with every default filled in (Hidden is 0 with
// NoHidden, Dropout 0 with NoDropout or NoHidden), as settings.json records
// it. It does not validate.
func (s Settings) Resolve() Settings {
	if s.NoHidden {
		s.Hidden = 0
		s.Dropout, s.NoDropout = 0, true
	} else if s.Hidden == 0 {
		s.Hidden = DefaultHidden
	}
	if s.NoDropout {
		s.Dropout = 0
	} else if s.Dropout == 0 {
		s.Dropout = DefaultDropout
	}
	if s.LR == 0 {
		s.LR = DefaultLR
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.Epochs == 0 {
		s.Epochs = DefaultEpochs
	}
	return s
}

// Schedule names a learning-rate schedule (Settings.Schedule).
type Schedule string

const (
	// ScheduleConstant keeps the learning rate: "" in settings.json.
	ScheduleConstant Schedule = ""
	// ScheduleCosine anneals it to zero along half a cosine.
	ScheduleCosine Schedule = "cosine"
)

// ParseSchedule reads a --lr-schedule value: constant or cosine.
func ParseSchedule(v string) (Schedule, error) {
	switch v {
	case "constant", "":
		return ScheduleConstant, nil
	case string(ScheduleCosine):
		return ScheduleCosine, nil
	}
	return "", fmt.Errorf("%w: unknown learning-rate schedule %q, want constant or cosine", ErrSettings, v)
}

// String is the schedule's --lr-schedule name.
func (s Schedule) String() string {
	if s == ScheduleConstant {
		return "constant"
	}
	return string(s)
}

// Steps is the number of optimizer steps of a run of s over rows training
// rows: Epochs passes of Batch-sized batches, the last of each pass maybe
// smaller. The schedule spans them.
func (s Settings) Steps(rows int) int {
	return s.Epochs * ((rows + s.Batch - 1) / s.Batch)
}

// LRFactor is the factor of the learning rate at optimizer step t (from
// 1) of a run of total steps under the schedule.
func (s Schedule) LRFactor(t, total int) float64 {
	if s == ScheduleCosine {
		return recipe.Cosine(t, total)
	}
	return 1
}

// ErrSettings is wrapped by every error about invalid settings.
var ErrSettings = errors.New("head: invalid settings")

// Validate checks the resolved settings.
func (s Settings) Validate() error {
	r := s.Resolve()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSettings, fmt.Sprintf(format, args...))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case r.Hidden < 0:
		return bad("hidden size %d is negative", r.Hidden)
	case !finite(r.Dropout) || r.Dropout < 0 || r.Dropout >= 1:
		return bad("dropout %g is outside [0, 1)", r.Dropout)
	case !finite(r.LR) || r.LR <= 0:
		return bad("learning rate %g must be positive", r.LR)
	case r.Batch < 1:
		return bad("batch size %d must be positive", r.Batch)
	case r.Epochs < 1:
		return bad("epochs %d must be positive", r.Epochs)
	case !finite(r.L2) || r.L2 < 0:
		return bad("L2 %g must be 0 or more", r.L2)
	case !finite(r.LabelSmoothing) || r.LabelSmoothing < 0 || r.LabelSmoothing >= 1:
		return bad("label smoothing %g is outside [0, 1)", r.LabelSmoothing)
	case r.ClassWeights != Unweighted && r.ClassWeights != Balanced:
		return bad("unknown class weighting %d", r.ClassWeights)
	case r.EarlyStop < 0:
		return bad("early-stop patience %d is negative", r.EarlyStop)
	case !finite(r.Holdout) || r.Holdout < 0 || r.Holdout >= 1:
		return bad("holdout fraction %g is outside [0, 1)", r.Holdout)
	case r.Schedule != ScheduleConstant && r.Schedule != ScheduleCosine:
		return bad("unknown learning-rate schedule %q", string(r.Schedule))
	case !finite(r.EMA) || r.EMA < 0 || r.EMA >= 1:
		return bad("EMA decay %g is outside [0, 1)", r.EMA)
	}
	return nil
}

// backend is the matrix product that Train uses for s.
func (s Settings) backend() gemmBackend {
	if s.gemm != nil {
		return *s.gemm
	}
	return backend
}
