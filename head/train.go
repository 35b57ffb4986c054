package head

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tlearn/tlearn/head/internal/recipe"
)

// Progress receives a training run's progress. Train calls it from the
// goroutine that called Train; a nil Progress is allowed.
type Progress interface {
	// Step is called after each training step: done of total steps of
	// epoch (counted from 0).
	Step(epoch, done, total int)
	// EpochDone is called after each epoch's validation, with the number
	// of epochs planned.
	EpochDone(e Epoch, epochs int)
}

// EpochFunc adapts a function to Progress; it ignores steps.
type EpochFunc func(e Epoch, epochs int)

// Step does nothing.
func (EpochFunc) Step(epoch, done, total int) {}

// EpochDone calls f.
func (f EpochFunc) EpochDone(e Epoch, epochs int) { f(e, epochs) }

// Result is the outcome of a training run.
type Result struct {
	Settings Settings // resolved
	// Weights are the last epoch's, or the best epoch's with SaveBest or
	// EarlyStop (early stopping always restores the best epoch, whether it
	// stopped early or not).
	Weights      *Weights
	WeightsEpoch int // the epoch (from 0) Weights come from
	History      History
	Best         int  // index in History of the highest validation accuracy
	EarlyStopped bool // training ended before Settings.Epochs
	Seconds      float64
	Backend      string // the matrix-product implementation used
}

// trainOptions are the resolved per-step settings.
type trainOptions struct {
	lr, l2       float64
	smoothing    float64
	classWeights []float64       // nil: unweighted
	drop         *recipe.Dropout // nil: no dropout
}

// Train fits a head to train and validates it on val after every epoch.
// It returns when the epochs are done, early stopping ends training, or ctx
// is cancelled (then with ctx's error and no result). train.X and val.X are
// only read.
func Train(ctx context.Context, train, val *Data, s Settings, progress Progress) (*Result, error) {
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
	if progress == nil {
		progress = EpochFunc(func(Epoch, int) {})
	}
	start := time.Now()
	d, k := train.Dim(), len(train.Classes)
	net := newNetwork(d, s.Hidden, k, max(s.Batch, evalRows), true)
	defer net.close()
	net.initGlorot(rand.New(rand.NewPCG(s.Seed, recipe.StreamInit)))

	o := &trainOptions{lr: s.LR, l2: s.L2, smoothing: s.LabelSmoothing}
	if s.Hidden > 0 && s.Dropout > 0 {
		o.drop = recipe.NewDropout(s.Dropout, s.Seed)
	}
	if s.ClassWeights == Balanced {
		o.classWeights = recipe.BalancedWeights(train.classCounts())
	}

	n := train.Len()
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	shuffler := rand.New(rand.NewPCG(s.Seed, recipe.StreamShuffle))
	steps := (n + s.Batch - 1) / s.Batch

	res := &Result{Settings: s, Best: -1, Backend: Backend()}
	var best []float32 // parameters of the best epoch, kept when they may be returned
	keepBest := s.SaveBest || s.EarlyStop > 0
	sinceBest := 0
	for epoch := range s.Epochs {
		t0 := time.Now()
		if !s.NoShuffle {
			shuffler.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		var loss float64
		var correct int
		for step := range steps {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("head: training stopped at epoch %d: %w", epoch, err)
			}
			rows := order[step*s.Batch : min((step+1)*s.Batch, n)]
			l, c := net.trainStep(train.X, train.Y, rows, o)
			loss += l
			correct += c
			progress.Step(epoch, step+1, steps)
		}
		e := Epoch{Epoch: epoch, Accuracy: float64(correct) / float64(n), Loss: loss / float64(n)}
		if math.IsNaN(e.Loss) || math.IsInf(e.Loss, 0) {
			return nil, fmt.Errorf("head: training diverged in epoch %d (loss %g); lower the learning rate", epoch, e.Loss)
		}
		e.ValLoss, e.ValAccuracy = net.validate(val, s.LabelSmoothing)
		e.Seconds = time.Since(t0).Seconds()
		res.History = append(res.History, e)
		progress.EpochDone(e, s.Epochs)

		if res.Best < 0 || e.ValAccuracy > res.History[res.Best].ValAccuracy {
			res.Best, sinceBest = epoch, 0
			if keepBest {
				best = append(best[:0], net.params...)
			}
		} else {
			sinceBest++
		}
		if s.EarlyStop > 0 && sinceBest >= s.EarlyStop && epoch+1 < s.Epochs {
			res.EarlyStopped = true
			break
		}
	}
	res.WeightsEpoch = len(res.History) - 1
	if keepBest {
		copy(net.params, best)
		res.WeightsEpoch = res.Best
	}
	res.Weights = net.weights(train.Classes)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// validate returns the mean loss (with label smoothing, without class
// weights) and the accuracy on d.
func (n *network) validate(d *Data, smoothing float64) (loss, acc float64) {
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
// < 1 means 5), per-class precision/recall/F1 and the confusion matrix.
func Evaluate(w *Weights, d *Data, topK int) (*Report, error) {
	net, err := inferenceNetwork(w, d)
	if err != nil {
		return nil, err
	}
	defer net.close()
	t := NewTally(w.Classes, topK)
	for r0 := 0; r0 < d.Len(); r0 += net.maxRows {
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
	net := newNetwork(dim, hidden, len(classes), 1, false)
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
	net := newNetwork(d.Dim(), w.HiddenSize(), w.NumClasses(), evalRows, false)
	net.setWeights(w)
	return net, nil
}
