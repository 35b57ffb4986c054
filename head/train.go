package head

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tlearn/tlearn/head/internal/recipe"
	"github.com/tlearn/tlearn/internal/progress"
)

// Result is the outcome of a training run.
type Result struct {
	Settings Settings // resolved
	// Weights are the last epoch's, or the best epoch's with SaveBest or
	// EarlyStop (early stopping always restores the best epoch, whether it
	// stopped early or not).
	Weights      *Weights
	WeightsEpoch int // the epoch Weights come from, counted from 1
	History      History
	Best         int  // index in History of the highest Epoch.SelectionAccuracy
	EarlyStopped bool // training ended before Settings.Epochs
	// SelectedOn names the set that ranked the epochs (Best):
	// SelectedOnHoldout or SelectedOnValidation.
	SelectedOn string
	// HoldoutN is the number of training rows held out (Settings.Holdout);
	// the others were trained on.
	HoldoutN int
	Seconds  float64
	Backend  string // the matrix-product implementation used
}

// trainOptions are the resolved per-step settings.
type trainOptions struct {
	lr, l2       float64
	baseLR       float64  // Settings.LR, which lr is under the schedule
	schedule     Schedule // sets lr before each step
	totalSteps   int      // of the whole run, for the schedule
	smoothing    float64
	classWeights []float64       // nil: unweighted
	drop         *recipe.Dropout // nil: no dropout
}

// Train fits a head to train and validates it on val after every epoch.
// With s.Holdout it trains on the rows that CarveHoldout keeps and ranks
// the epochs on the others (an error wrapping ErrHoldout when a class
// cannot give both). It returns when the epochs are done, early stopping
// ends training, or ctx is cancelled (then with ctx's error and no
// result). Each epoch is reported on p (nil: silent) as RunEpochs
// describes. train.X and val.X are only read.
func Train(ctx context.Context, train, val *Data, s Settings, p progress.Reporter) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.Resolve()
	if err := train.Validate(); err != nil {
		return nil, fmt.Errorf("head: training set: %w", err)
	}
	if err := val.Validate(); err != nil {
		return nil, fmt.Errorf("head: validation set: %w", err)
	}
	if err := compatible(train, val); err != nil {
		return nil, err
	}
	start := time.Now()
	st, err := NewEpochStateFor(train.Y, train.Classes, s)
	if err != nil {
		return nil, err
	}
	m := newHeadModel(train, val, st.Order, s)
	defer m.net.close()
	w, err := RunEpochs(ctx, m, st, s, p)
	if err != nil {
		return nil, err
	}
	if m.ema != nil && !s.keepsBest() {
		copy(m.net.params, m.ema) // the last epoch's average
	}
	return &Result{
		Settings: s, Weights: m.net.weights(train.Classes), WeightsEpoch: st.History[w].Epoch,
		History: st.History, Best: st.Best, EarlyStopped: st.Stopped,
		SelectedOn: s.SelectedOn(), HoldoutN: len(st.Holdout),
		Seconds: time.Since(start).Seconds(), Backend: Backend(),
	}, nil
}

// headModel is the gonum head as RunEpochs trains it.
type headModel struct {
	net        *network
	train, val *Data
	o          *trainOptions
	best       []float32    // the parameters of the best epoch, when kept
	measured   *Data        // scratch: the holdout's rows, gathered once
	views      *ViewSampler // nil: one view per training row
	// ema is the moving average of net.params (Settings.EMA), nil
	// without; trained holds the trained parameters while the average
	// stands in for them.
	ema, trained []float32
	emaDecay     float64
}

// newHeadModel is the head for training on the rows of train.
func newHeadModel(train, val *Data, rows []int32, s Settings) *headModel {
	net := newNetwork(train.Dim(), s.Hidden, len(train.Classes), max(s.Batch, evalRows), true, s.backend())
	net.initGlorot(rand.New(rand.NewPCG(s.Seed, recipe.StreamInit)))
	o := &trainOptions{lr: s.LR, baseLR: s.LR, schedule: s.Schedule, totalSteps: s.Steps(len(rows)),
		l2: s.L2, smoothing: s.LabelSmoothing}
	if s.Hidden > 0 && s.Dropout > 0 {
		o.drop = recipe.NewDropout(s.Dropout, s.Seed)
	}
	if s.ClassWeights == Balanced {
		o.classWeights = recipe.BalancedWeights(ClassCounts(train.Y, rows, len(train.Classes)))
	}
	m := &headModel{net: net, train: train, val: val, o: o, views: NewViewSampler(train.Y, train.NumViews(), s.Seed)}
	if s.EMA > 0 {
		m.ema, m.emaDecay = slices.Clone(net.params), s.EMA
	}
	return m
}

func (m *headModel) Step(_ context.Context, rows []int32) (float64, int, error) {
	m.o.lr = m.o.baseLR * m.o.schedule.LRFactor(m.net.steps+1, m.o.totalSteps)
	l, c := m.net.trainStep(m.train.X, m.views.Labels(m.train.Y), m.views.Rows(rows), m.o)
	if m.ema != nil {
		t := float64(m.net.steps)
		movingAverage(m.ema, m.net.params, float32(1-min(m.emaDecay, (1+t)/(10+t))))
	}
	return l, c, nil
}

// movingAverage moves avg towards p by the fraction a: avg += a·(p − avg).
func movingAverage(avg, p []float32, a float32) {
	p = p[:len(avg)]
	for i, v := range p {
		avg[i] += a * (v - avg[i])
	}
}

// evaluated are the parameters that validation measures and a run keeps:
// the moving average with Settings.EMA, else the trained ones.
func (m *headModel) evaluated() []float32 {
	if m.ema != nil {
		return m.ema
	}
	return m.net.params
}

// averaged runs f with evaluated standing in for the trained parameters,
// which it then puts back.
func (m *headModel) averaged(f func()) {
	if m.ema == nil {
		f()
		return
	}
	m.trained = append(m.trained[:0], m.net.params...)
	copy(m.net.params, m.ema)
	f()
	copy(m.net.params, m.trained)
}

func (m *headModel) Validate(context.Context) (l, a float64, _ error) {
	m.averaged(func() { l, a = m.net.validate(m.val, m.o.smoothing) })
	return l, a, nil
}

// Measure evaluates the training rows (the holdout), gathered into one
// block on the first call: the same rows come back every epoch. With
// views, it measures as validation does: the views' mean probabilities
// when the validation data has views (test-time augmentation), else the
// plain view.
func (m *headModel) Measure(_ context.Context, rows []int32) (float64, float64, error) {
	if m.measured == nil || m.measured.Len() != len(rows) {
		k, dim := m.train.NumViews(), m.train.Dim()
		if m.val == nil || m.val.NumViews() == 1 {
			k = 1
		}
		d := &Data{X: make([]float32, 0, len(rows)*k*dim), Y: make([]int32, 0, len(rows)), Classes: m.train.Classes, Views: k}
		for _, r := range rows {
			d.X = append(d.X, m.train.Row(int(r))[:k*dim]...)
			d.Y = append(d.Y, m.train.Y[r])
		}
		m.measured = d
	}
	var l, a float64
	m.averaged(func() { l, a = m.net.validate(m.measured, m.o.smoothing) })
	return l, a, nil
}

// Snapshot keeps the parameters that Validate measured.
func (m *headModel) Snapshot() error {
	m.best = append(m.best[:0], m.evaluated()...)
	return nil
}

func (m *headModel) Restore() error {
	copy(m.net.params, m.best)
	return nil
}

func (m *headModel) EndEpoch(st *EpochState) error {
	m.views.Sync(st)
	return nil
}

// validate returns the mean loss (with label smoothing, without class
// weights) and the accuracy on d.
func (n *network) validate(d *Data, smoothing float64) (loss, acc float64) {
	if d.NumViews() > 1 {
		return n.validateViews(d, smoothing)
	}
	var correct int
	for r0 := 0; r0 < d.Len(); r0 += n.maxRows {
		rows := min(n.maxRows, d.Len()-r0)
		n.forward(d.X[r0*n.d:(r0+rows)*n.d], rows, false, nil)
		l, c := n.evalLoss(rows, d.Y[r0:r0+rows], smoothing)
		loss += l
		correct += c
	}
	return loss / float64(d.Len()), float64(correct) / float64(d.Len())
}

// Evaluate runs the head w on d and reports accuracy, top-k accuracy (topK
// < 1 means 5), per-class precision/recall/F1 and the confusion matrix
// (of the views' mean probabilities when d has views). A cancelled ctx
// stops it between batches with ctx's error.
func Evaluate(ctx context.Context, w *Weights, d *Data, topK int) (*Report, error) {
	if d.NumViews() > 1 {
		return evaluateViews(ctx, w, d, topK)
	}
	net, err := inferenceNetwork(w, d)
	if err != nil {
		return nil, err
	}
	defer net.close()
	t := NewTally(w.Classes, topK)
	for r0 := 0; r0 < d.Len(); r0 += net.maxRows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := min(net.maxRows, d.Len()-r0)
		net.forward(d.X[r0*net.d:(r0+rows)*net.d], rows, false, nil)
		for i := range rows {
			t.AddLogits(int(d.Y[r0+i]), net.z2[i*net.kp:i*net.kp+net.k])
		}
	}
	return t.Report(), nil
}

// Predict returns the class probabilities [N×K] of the rows of x (N×D,
// row-major) under the head w.
func Predict(w *Weights, x []float32) ([]float32, error) {
	// InputDim indexes the shapes, which only Validate guarantees.
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("head: weights: %w", err)
	}
	dim := w.InputDim()
	if len(x)%dim != 0 {
		return nil, fmt.Errorf("%w: %d values are not rows of %d features", ErrData, len(x), dim)
	}
	rows := len(x) / dim
	d := &Data{X: x, Y: make([]int32, rows), Classes: w.Classes}
	if rows == 0 {
		return nil, nil
	}
	net, err := inferenceNetwork(w, d)
	if err != nil {
		return nil, err
	}
	defer net.close()
	k := net.k
	out := make([]float32, rows*k)
	for r0 := 0; r0 < rows; r0 += net.maxRows {
		m := min(net.maxRows, rows-r0)
		net.forward(x[r0*dim:(r0+m)*dim], m, false, nil)
		for i := range m {
			z := net.z2[i*net.kp : i*net.kp+k]
			lse, _, _ := recipe.LogSumExp(z)
			for j, v := range z {
				out[(r0+i)*k+j] = float32(math.Exp(float64(v) - lse))
			}
		}
	}
	return out, nil
}

// InitialWeights returns the head that Train starts from with this seed:
// Glorot-uniform kernels (Keras' default) and zero biases, for dim
// features, hidden units (0: no hidden layer) and the classes.
// finetune.FineTune draws its fresh heads here, so that both trainers start
// alike.
func InitialWeights(dim, hidden int, classes []string, seed uint64) *Weights {
	net := newNetwork(dim, hidden, len(classes), 1, false, backend)
	defer net.close()
	net.initGlorot(rand.New(rand.NewPCG(seed, recipe.StreamInit)))
	return net.weights(classes)
}

// inferenceNetwork checks w against d and loads it.
func inferenceNetwork(w *Weights, d *Data) (*network, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("head: weights: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if d.Dim() != w.InputDim() {
		return nil, fmt.Errorf("%w: the features have %d values per row, the head expects %d (made with another backbone?)", ErrData, d.Dim(), w.InputDim())
	}
	if len(d.Classes) != w.NumClasses() {
		return nil, fmt.Errorf("%w: the data has %d classes, the head %d", ErrData, len(d.Classes), w.NumClasses())
	}
	if !slices.Equal(d.Classes, w.Classes) {
		return nil, fmt.Errorf("%w: the data's classes %v are not the head's %v", ErrData, d.Classes, w.Classes)
	}
	net := newNetwork(d.Dim(), w.HiddenSize(), w.NumClasses(), evalRows, false, backend)
	net.setWeights(w)
	return net, nil
}
