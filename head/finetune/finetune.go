package finetune

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/internal/recipe"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
)

// Result is the outcome of a fine-tuning run.
type Result struct {
	Settings Settings // resolved
	// Weights hold the head and block5's three convolutions
	// (block5_conv{1,2,3}.{weight,bias}, torchvision layout): the last
	// epoch's, or the best epoch's with SaveBest or EarlyStop.
	Weights      *head.Weights
	WeightsEpoch int // the epoch Weights come from, counted from 1
	History      head.History
	Best         int // index in History of the highest Epoch.SelectionAccuracy
	EarlyStopped bool
	// SelectedOn names the set that ranked the epochs (Best), as
	// head.Result's.
	SelectedOn string
	// HoldoutN is the number of training maps held out (Settings.Holdout).
	HoldoutN int
	// Validation is the report of Weights on the validation set (for the
	// confusion matrix).
	Validation *head.Report
	// Resumed is the number of epochs read from the checkpoint.
	Resumed int
	Seconds float64
	// ImagesPerSecond is the training throughput of the train steps (no
	// validation, no checkpoints) run by this call.
	ImagesPerSecond float64
	Device          ortlib.Device
	// DeviceNote says why an automatic device choice fell back to CPU.
	DeviceNote string
}

// FineTune trains block5 and the head on block4_pool maps with the
// generated training graph under ONNX Runtime, validating after every
// epoch, with head.RunEpochs' epoch loop (and its reports on p; nil is
// silent). With s.Holdout it trains on the maps that head.CarveHoldout
// keeps and ranks the epochs on the others. start holds block5's tensors (torchvision layout, see
// StartWeights) and optionally a trained head to begin with (two-stage
// fine-tuning); without a head, the head starts from head.InitialWeights,
// as Train's does. With s.Checkpoint set, the state after every epoch
// (parameters, optimizer moments, generator states, history) is written
// there atomically and a later call with the same settings and data
// continues from it. p.Log tells of a resumed checkpoint and of a device
// fallback. The caller initializes ONNX Runtime.
//
// On cancellation FineTune stops within one step and returns ctx's error;
// the checkpoint of the last finished epoch stays valid.
func FineTune(ctx context.Context, train, val *MapsData, start *head.Weights, s Settings, p progress.Reporter) (*Result, error) {
	s, err := checkInputs(train, val, start, s)
	if err != nil {
		return nil, err
	}
	p = progress.OrNop(p)
	t0 := time.Now()
	sess, err := newSession(s.graphSpec(train.Shape, len(train.Classes)), s.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if sess.fallback != "" {
		p.Log(sess.fallback)
	}
	st, err := head.NewEpochStateFor(train.Y, train.Classes, s.Settings)
	if err != nil {
		return nil, err
	}
	m := newModel(sess, train, val, st.Order, s)
	if err := m.begin(start, st, p); err != nil {
		return nil, err
	}
	res := &Result{Settings: s, Resumed: len(st.History), Device: sess.device, DeviceNote: sess.fallback}
	w, err := head.RunEpochs(ctx, m, st, s.Settings, p)
	if err != nil {
		return nil, err
	}
	res.History, res.Best, res.EarlyStopped = st.History, st.Best, st.Stopped
	res.SelectedOn, res.HoldoutN = s.SelectedOn(), len(st.Holdout)
	res.WeightsEpoch = st.History[w].Epoch
	res.Weights = sess.weights(train.Classes)
	tally := head.NewTally(train.Classes, 0)
	if _, _, err := validate(ctx, sess, val, nil, s.Batch, 0, tally); err != nil {
		return nil, err
	}
	res.Validation = tally.Report()
	res.Seconds = time.Since(t0).Seconds()
	if m.trainSeconds > 0 {
		res.ImagesPerSecond = float64(m.trainImages) / m.trainSeconds
	}
	return res, nil
}

// checkInputs validates and resolves the settings and checks the data and
// the starting weights against each other.
func checkInputs(train, val *MapsData, start *head.Weights, s Settings) (Settings, error) {
	if err := s.Validate(); err != nil {
		return s, err
	}
	s = s.Resolve()
	if err := train.Validate(); err != nil {
		return s, fmt.Errorf("finetune: training maps: %w", err)
	}
	if err := val.Validate(); err != nil {
		return s, fmt.Errorf("finetune: validation maps: %w", err)
	}
	switch {
	case train.Shape != val.Shape:
		return s, fmt.Errorf("%w: training maps have shape %v, validation maps %v (made with different backbones or sizes?)", ErrData, train.Shape, val.Shape)
	case !slices.Equal(train.Classes, val.Classes):
		return s, fmt.Errorf("%w: training classes %v differ from validation classes %v", ErrData, train.Classes, val.Classes)
	}
	return s, checkStart(start, train, s)
}

// withGlorotHead returns start plus a head drawn exactly as Train draws
// its initial weights.
func withGlorotHead(start *head.Weights, d *MapsData, s Settings) *head.Weights {
	w := head.InitialWeights(d.Shape[0], s.Hidden, d.Classes, s.Seed)
	for name, t := range start.Tensors {
		if _, ok := w.Tensors[name]; !ok {
			w.Tensors[name] = t
		}
	}
	return w
}

// validate runs the eval graph over the maps which of d (nil: all) and
// returns the mean loss (with label smoothing, no class weights, as
// Train's) and the accuracy; tally, when not nil, counts every example.
// All of a d with views is validated on the views' mean probabilities.
func validate(ctx context.Context, sess *session, d *MapsData, which []int32, bs int, smoothing float64, tally *head.Tally) (loss, acc float64, err error) {
	if d.numViews() > 1 && which == nil {
		return validateViews(ctx, sess, d, bs, smoothing, tally)
	}
	n, k := d.Len(), len(d.Classes)
	if which != nil {
		n = len(which)
	}
	rows := make([]int32, 0, bs)
	sc := scorer{smoothing: smoothing, tally: tally}
	for r0 := 0; r0 < n; r0 += bs {
		rows = rows[:0]
		for i := r0; i < min(r0+bs, n); i++ {
			if which != nil {
				rows = append(rows, which[i])
			} else {
				rows = append(rows, int32(i))
			}
		}
		b, err := sess.batch(len(rows))
		if err != nil {
			return 0, 0, err
		}
		b.fillMaps(d, rows)
		if err := sess.evaluate(ctx, b); err != nil {
			return 0, 0, err
		}
		logits := b.evalLogits()
		for i, row := range rows {
			sc.add(logits[i*k:(i+1)*k], int(d.Y[row]))
		}
	}
	return sc.mean(n)
}

// scorer sums the loss (with label smoothing) and counts the right answers
// of validation's logits, one example at a time; tally, when not nil,
// counts every example.
type scorer struct {
	smoothing float64
	tally     *head.Tally
	loss      float64
	correct   int
}

func (s *scorer) add(z []float32, y int) {
	l, arg := recipe.CrossEntropy(z, y, s.smoothing)
	if arg == y {
		s.correct++
	}
	s.loss += l
	if s.tally != nil {
		s.tally.AddLogits(y, z)
	}
}

// mean is the mean loss and the accuracy of n examples.
func (s *scorer) mean(n int) (loss, acc float64, err error) {
	return s.loss / float64(n), float64(s.correct) / float64(n), nil
}

// model is block5 and the head as head.RunEpochs trains them: the session
// and the training state outside ONNX Runtime (the dropout generator, the
// optimizer's step count, the best epoch's weights).
type model struct {
	sess         *session
	train, val   *MapsData
	s            Settings
	drop         *recipe.Dropout
	classWeights []float64
	steps        int           // optimizer steps taken (Adam's t)
	totalSteps   int           // of the whole run, for the learning-rate schedule
	best         *head.Weights // the best epoch's parameters, when the run keeps them

	views      *head.ViewSampler // nil: one view per image; else train holds its view rows
	trainViews int               // K of the training maps

	trainSeconds float64 // in the train steps of this call
	trainImages  int
}

// newModel is block5 and the head for training on the maps rows of train.
func newModel(sess *session, train, val *MapsData, rows []int32, s Settings) *model {
	m := &model{sess: sess, train: train.viewRows(), val: val, s: s, trainViews: train.numViews(),
		views: head.NewViewSampler(train.Y, train.numViews(), s.Seed), totalSteps: s.Steps(len(rows))}
	rate := 0.0
	if s.Hidden > 0 {
		rate = s.Dropout
	}
	m.drop = recipe.NewDropout(rate, s.Seed)
	if s.ClassWeights == head.Balanced {
		m.classWeights = recipe.BalancedWeights(head.ClassCounts(train.Y, rows, len(train.Classes)))
	}
	return m
}

// begin loads the starting parameters: the checkpoint's, when there is
// one (st and m then continue from it), else start's, with a fresh head
// when start has none.
func (m *model) begin(start *head.Weights, st *head.EpochState, p progress.Reporter) error {
	w := start
	if _, ok := start.Tensors[head.OutputWeight]; !ok {
		w = withGlorotHead(start, m.train, m.s)
	}
	var moments map[string]head.Tensor
	if m.s.Checkpoint != "" {
		ck, err := readCheckpoint(m.s.Checkpoint)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			if err := m.restore(ck, st); err != nil {
				return fmt.Errorf("finetune: checkpoint %s: %w", m.s.Checkpoint, err)
			}
			w, moments = ck.weights, ck.moments
			m.views.Sync(st)
			p.Log(fmt.Sprintf("resuming from %s after epoch %d of %d", m.s.Checkpoint, len(st.History), m.s.Epochs))
		}
	}
	return m.sess.load(w, moments)
}

// Step runs one train step of the graph on the maps of rows.
func (m *model) Step(ctx context.Context, rows []int32) (float64, int, error) {
	rows = m.views.Rows(rows)
	b, err := m.sess.batch(len(rows))
	if err != nil {
		return 0, 0, err
	}
	b.fillMaps(m.train, rows)
	m.fillLabels(b.labels.GetData(), rows)
	if b.mask != nil {
		m.drop.Mask(b.mask.GetData())
	}
	m.steps++
	m.sess.stepScalars(m.s, m.steps, m.s.Schedule.LRFactor(m.steps, m.totalSteps))
	t0 := time.Now()
	if err := m.sess.step(ctx, b); err != nil {
		return 0, 0, err
	}
	m.trainSeconds += time.Since(t0).Seconds()
	m.trainImages += len(rows)
	k := len(m.train.Classes)
	logits := b.logits.GetData()
	correct := 0
	for i, row := range rows {
		if _, arg, _ := recipe.LogSumExp(logits[i*k : (i+1)*k]); arg == int(m.train.Y[row]) {
			correct++
		}
	}
	return float64(b.loss.GetData()[0]) * float64(len(rows)), correct, nil
}

// Validate runs the eval graph over the validation maps.
func (m *model) Validate(ctx context.Context) (float64, float64, error) {
	return validate(ctx, m.sess, m.val, nil, m.s.Batch, m.s.LabelSmoothing, nil)
}

// Measure runs the eval graph over the training maps rows (the holdout),
// on their plain view (view 0) when the maps have views.
func (m *model) Measure(ctx context.Context, rows []int32) (float64, float64, error) {
	if m.trainViews > 1 {
		plain := make([]int32, len(rows))
		for i, r := range rows {
			plain[i] = r * int32(m.trainViews)
		}
		rows = plain
	}
	return validate(ctx, m.sess, m.train, rows, m.s.Batch, m.s.LabelSmoothing, nil)
}

// Snapshot copies the current parameters out of the session.
func (m *model) Snapshot() error {
	m.best = m.sess.weights(m.train.Classes)
	return nil
}

// Restore loads the snapshot back (the optimizer moments stay).
func (m *model) Restore() error {
	if m.best == nil {
		return nil
	}
	return m.sess.load(m.best, nil)
}

// EndEpoch writes the checkpoint, when the run keeps one.
func (m *model) EndEpoch(st *head.EpochState) error {
	m.views.Sync(st)
	if m.s.Checkpoint == "" {
		return nil
	}
	return writeCheckpoint(m.s.Checkpoint, m.checkpoint(st))
}

// fillLabels writes the batch's targets: one-hot, smoothed as
// (1−s)·onehot + s/K, times the example's class weight.
func (m *model) fillLabels(dst []float32, rows []int32) {
	k := len(dst) / len(rows)
	sm := m.s.LabelSmoothing
	for i, row := range rows {
		c := int(m.train.Y[row])
		w := 1.0
		if m.classWeights != nil {
			w = m.classWeights[c]
		}
		t := dst[i*k : (i+1)*k]
		for j := range t {
			v := sm / float64(k)
			if j == c {
				v += 1 - sm
			}
			t[j] = float32(w * v)
		}
	}
}
