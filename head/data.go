package head

import (
	"errors"
	"fmt"
	"slices"
)

// Data is a labelled set of feature vectors.
type Data struct {
	// X holds N rows of K views of D features, row-major ([N,K,D], a
	// cache's features.npy). It may be a read-only memory map: the package
	// never writes into it.
	X []float32
	// Y holds N labels in [0, len(Classes)).
	Y []int32
	// Classes names the labels.
	Classes []string
	// Views is K, the views of each row (augmented copies of one image,
	// view 0 the plain one); 0 means 1. Train draws one view of each
	// training row per epoch (DrawView); Train's validation, Evaluate and
	// Predict average the probabilities of the views (test-time
	// augmentation): hand them the plain view alone (View) for plain
	// validation.
	Views int
}

// MaxViews bounds Data.Views and finetune's MapsData.Views.
const MaxViews = 64

// Len is N.
func (d *Data) Len() int { return len(d.Y) }

// NumViews is K, at least 1.
func (d *Data) NumViews() int { return max(1, d.Views) }

// Dim is D, the number of features per view of a row (0 for an empty set).
func (d *Data) Dim() int {
	if len(d.Y) == 0 {
		return 0
	}
	return len(d.X) / (len(d.Y) * d.NumViews())
}

// Row returns row i of X: its K views' features, one after another.
func (d *Data) Row(i int) []float32 {
	n := d.Dim() * d.NumViews()
	return d.X[i*n : (i+1)*n : (i+1)*n]
}

// View returns the data of view v of every row alone (a copy of X's
// features when d has more than one view; d itself when it has one).
func (d *Data) View(v int) *Data {
	k := d.NumViews()
	if k == 1 {
		return d
	}
	dim := d.Dim()
	x := make([]float32, d.Len()*dim)
	for i := range d.Len() {
		copy(x[i*dim:(i+1)*dim], d.X[(i*k+v)*dim:(i*k+v+1)*dim])
	}
	return &Data{X: x, Y: d.Y, Classes: d.Classes}
}

// ErrData is wrapped by every error about inconsistent data.
var ErrData = errors.New("head: invalid data")

// Validate checks the shapes and that every label names a class.
func (d *Data) Validate() error {
	switch {
	case d == nil || len(d.Y) == 0:
		return fmt.Errorf("%w: no examples", ErrData)
	case len(d.Classes) == 0:
		return fmt.Errorf("%w: no class names", ErrData)
	case d.Views < 0 || d.Views > MaxViews:
		return fmt.Errorf("%w: %d views per row, want 1..%d", ErrData, d.Views, MaxViews)
	case len(d.X) == 0 || len(d.X)%(len(d.Y)*d.NumViews()) != 0:
		return fmt.Errorf("%w: %d feature values do not make %d rows of %d views", ErrData, len(d.X), len(d.Y), d.NumViews())
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= len(d.Classes) {
			return fmt.Errorf("%w: row %d has label %d, but there are %d classes", ErrData, i, y, len(d.Classes))
		}
	}
	return nil
}

// compatible checks that two sets can train and validate one model.
func compatible(train, val *Data) error {
	if train.Dim() != val.Dim() {
		return fmt.Errorf("%w: training features have %d values per row, validation features %d (made with different backbones?)", ErrData, train.Dim(), val.Dim())
	}
	if !slices.Equal(train.Classes, val.Classes) {
		return fmt.Errorf("%w: training classes %v differ from validation classes %v", ErrData, train.Classes, val.Classes)
	}
	return nil
}

// classCounts counts the examples of each class.
func (d *Data) classCounts() []int {
	c := make([]int, len(d.Classes))
	for _, y := range d.Y {
		c[y]++
	}
	return c
}

// streamViews keys DrawView's hash, apart from the PCG streams of
// head/internal/recipe.
const streamViews = 0x76696577 // "view"

// DrawView is the view that training row row shows in epoch epoch
// (counted from 0) of a run with this seed: uniform over the views
// 0..views-1 and a pure function of its arguments, so that it does not
// depend on the batch, the shuffle or where a resumed run starts.
func DrawView(seed uint64, epoch, row, views int) int {
	h := splitMix(seed ^ streamViews)
	h = splitMix(h ^ uint64(epoch))
	h = splitMix(h ^ uint64(row))
	return int((h >> 32) * uint64(views) >> 32)
}

// splitMix is SplitMix64's finaliser: a bijection that mixes every bit.
func splitMix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ViewSampler turns the training rows of a step into rows of one view each,
// for data of K views per row laid out [N,K,...]: row r's view v is view
// row r*K+v, with label Labels()[r*K+v]. Both trainers use it where they
// gather a batch; a nil *ViewSampler (one view) passes rows through.
type ViewSampler struct {
	views  int
	seed   uint64
	epoch  int
	labels []int32
	rows   []int32
}

// NewViewSampler is the sampler of training labels y with views views per
// row and the run's seed; nil for one view.
func NewViewSampler(y []int32, views int, seed uint64) *ViewSampler {
	if views <= 1 {
		return nil
	}
	s := &ViewSampler{views: views, seed: seed, labels: make([]int32, len(y)*views)}
	for r, l := range y {
		for v := range views {
			s.labels[r*views+v] = l
		}
	}
	return s
}

// Sync sets the epoch to the one that follows st's history: call it
// before the first epoch of a (resumed) run and at the end of every epoch.
func (s *ViewSampler) Sync(st *EpochState) {
	if s != nil {
		s.epoch = len(st.History)
	}
}

// Rows returns the view rows of rows in this epoch (a buffer reused by
// the next call), or rows itself for a nil sampler.
func (s *ViewSampler) Rows(rows []int32) []int32 {
	if s == nil {
		return rows
	}
	s.rows = s.rows[:0]
	for _, r := range rows {
		s.rows = append(s.rows, r*int32(s.views)+int32(DrawView(s.seed, s.epoch, int(r), s.views)))
	}
	return s.rows
}

// Labels returns the labels of the view rows, or y for a nil sampler.
func (s *ViewSampler) Labels(y []int32) []int32 {
	if s == nil {
		return y
	}
	return s.labels
}
