package finetune

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/internal/recipe"
	"github.com/tlearn/tlearn/internal/ortlib"
)

// Result is the outcome of a fine-tuning run.
type Result struct {
	Settings Settings // resolved
	// Weights hold the head and block5's three convolutions
	// (block5_conv{1,2,3}.{weight,bias}, torchvision layout): the last
	// epoch's, or the best epoch's with SaveBest or EarlyStop.
	Weights      *head.Weights
	WeightsEpoch int
	History      head.History
	Best         int // index in History of the highest validation accuracy
	EarlyStopped bool
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

// Noter is an optional extension of Progress: FineTune tells it about a
// resumed checkpoint and the device fallback before training starts.
type Noter interface {
	Note(msg string)
}

// FineTune trains block5 and the head on block4_pool maps with the
// generated training graph under ONNX Runtime, validating after every
// epoch. start holds block5's tensors (torchvision layout, see
// models.ReadBlock5) and optionally a trained head to begin with (two-stage
// fine-tuning); without a head, the head starts from the same Glorot draw
// as Train's. With s.Checkpoint set, the state after every epoch
// (parameters, optimizer moments, generator states, history) is written
// there atomically and a later call with the same settings and data
// continues from it. The caller initializes ONNX Runtime.
//
// On cancellation FineTune stops within one step and returns ctx's error;
// the checkpoint of the last finished epoch stays valid.
func FineTune(ctx context.Context, train, val *MapsData, start *head.Weights, s Settings, progress head.Progress) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.Resolve()
	if err := train.Validate(); err != nil {
		return nil, fmt.Errorf("finetune: training maps: %w", err)
	}
	if err := val.Validate(); err != nil {
		return nil, fmt.Errorf("finetune: validation maps: %w", err)
	}
	switch {
	case train.Shape != val.Shape:
		return nil, fmt.Errorf("%w: training maps have shape %v, validation maps %v (made with different backbones or sizes?)", ErrData, train.Shape, val.Shape)
	case !slices.Equal(train.Classes, val.Classes):
		return nil, fmt.Errorf("%w: training classes %v differ from validation classes %v", ErrData, train.Classes, val.Classes)
	}
	if err := checkStart(start, train, s); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = head.EpochFunc(func(head.Epoch, int) {})
	}
	t0 := time.Now()
	k := len(train.Classes)
	spec := s.graphSpec(train.Shape, k)
	sess, err := newSession(spec, s.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	noter, _ := progress.(Noter)
	if sess.fallback != "" && noter != nil {
		noter.Note(sess.fallback)
	}

	r := newFTRun(train, s)
	w := start
	if _, ok := start.Tensors[head.OutputWeight]; !ok {
		w = withGlorotHead(start, train, s)
	}
	var moments map[string]head.Tensor
	if s.Checkpoint != "" {
		ck, err := readCheckpoint(s.Checkpoint)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			if err := r.restore(ck, train, val); err != nil {
				return nil, fmt.Errorf("finetune: checkpoint %s: %w", s.Checkpoint, err)
			}
			w, moments = ck.weights, ck.moments
			if noter != nil {
				noter.Note(fmt.Sprintf("resuming from %s after epoch %d of %d", s.Checkpoint, len(r.history), s.Epochs))
			}
		}
	}
	if err := sess.load(w, moments); err != nil {
		return nil, err
	}
	res := &Result{Settings: s, Resumed: len(r.history), Device: sess.device, DeviceNote: sess.fallback}

	var trainSeconds float64
	var trainImages int
	n := train.Len()
	steps := (n + s.Batch - 1) / s.Batch
	for epoch := len(r.history); epoch < s.Epochs && !r.stopped; epoch++ {
		te := time.Now()
		if !s.NoShuffle {
			r.shuffler.Shuffle(n, func(i, j int) { r.order[i], r.order[j] = r.order[j], r.order[i] })
		}
		var loss float64
		var correct int
		for step := range steps {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("finetune: fine-tuning stopped in epoch %d: %w", epoch, err)
			}
			rows := r.order[step*s.Batch : min((step+1)*s.Batch, n)]
			b, err := sess.batch(len(rows))
			if err != nil {
				return nil, err
			}
			b.fillMaps(train, rows)
			r.fillLabels(b.labels.GetData(), train.Y, rows)
			if b.mask != nil {
				r.drop.Mask(b.mask.GetData())
			}
			r.steps++
			sess.stepScalars(s, r.steps)
			ts := time.Now()
			if err := sess.step(ctx, b); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("finetune: fine-tuning stopped in epoch %d: %w", epoch, ctx.Err())
				}
				return nil, err
			}
			trainSeconds += time.Since(ts).Seconds()
			trainImages += len(rows)
			loss += float64(b.loss.GetData()[0]) * float64(len(rows))
			logits := b.logits.GetData()
			for i, row := range rows {
				if _, arg, _ := recipe.LogSumExp(logits[i*k : (i+1)*k]); arg == int(train.Y[row]) {
					correct++
				}
			}
			progress.Step(epoch, step+1, steps)
		}
		e := head.Epoch{Epoch: epoch, Accuracy: float64(correct) / float64(n), Loss: loss / float64(n)}
		if math.IsNaN(e.Loss) || math.IsInf(e.Loss, 0) {
			return nil, fmt.Errorf("finetune: fine-tuning diverged in epoch %d (loss %g); lower the learning rate", epoch, e.Loss)
		}
		e.ValLoss, e.ValAccuracy, err = validate(ctx, sess, val, s.Batch, s.LabelSmoothing, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("finetune: fine-tuning stopped in epoch %d: %w", epoch, ctx.Err())
			}
			return nil, err
		}
		e.Seconds = time.Since(te).Seconds()
		r.endEpoch(e, sess, train.Classes)
		if s.Checkpoint != "" {
			if err := writeCheckpoint(s.Checkpoint, r.checkpoint(sess, train.Classes, train, val)); err != nil {
				return nil, err
			}
		}
		progress.EpochDone(e, s.Epochs)
	}

	res.History, res.Best, res.EarlyStopped = r.history, r.history.Best(), r.stopped
	res.WeightsEpoch = len(r.history) - 1
	if r.keepBest && r.best != nil {
		if err := sess.load(r.best, nil); err != nil {
			return nil, err
		}
		res.WeightsEpoch = r.bestEpoch
	}
	res.Weights = sess.weights(train.Classes)
	tally := head.NewTally(train.Classes, 0)
	if _, _, err := validate(ctx, sess, val, s.Batch, 0, tally); err != nil {
		return nil, err
	}
	res.Validation = tally.Report()
	res.Seconds = time.Since(t0).Seconds()
	if trainSeconds > 0 {
		res.ImagesPerSecond = float64(trainImages) / trainSeconds
	}
	return res, nil
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

// validate runs the eval graph over d and returns the mean loss (with
// label smoothing, no class weights, as Train's) and the accuracy; tally,
// when not nil, counts every example.
func validate(ctx context.Context, sess *session, d *MapsData, bs int, smoothing float64, tally *head.Tally) (loss, acc float64, err error) {
	n, k := d.Len(), len(d.Classes)
	rows := make([]int32, 0, bs)
	u := smoothing / float64(k)
	correct := 0
	for r0 := 0; r0 < n; r0 += bs {
		rows = rows[:0]
		for i := r0; i < min(r0+bs, n); i++ {
			rows = append(rows, int32(i))
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
			z := logits[i*k : (i+1)*k]
			y := int(d.Y[row])
			lse, arg, sum := recipe.LogSumExp(z)
			if arg == y {
				correct++
			}
			loss += lse - u*sum - (1-smoothing)*float64(z[y])
			if tally != nil {
				tally.AddLogits(y, z)
			}
		}
	}
	return loss / float64(n), float64(correct) / float64(n), nil
}

// ftRun is the training state outside ONNX Runtime: the generators, the
// example order, the history and the best epoch's weights.
type ftRun struct {
	s            Settings
	order        []int32
	shufflePCG   *rand.PCG
	shuffler     *rand.Rand
	drop         *recipe.Dropout
	steps        int // optimizer steps taken (Adam's t)
	history      head.History
	classWeights []float64

	keepBest  bool
	best      *head.Weights
	bestEpoch int
	sinceBest int
	stopped   bool
}

func newFTRun(train *MapsData, s Settings) *ftRun {
	r := &ftRun{s: s, order: make([]int32, train.Len()), keepBest: s.SaveBest || s.EarlyStop > 0, bestEpoch: -1}
	for i := range r.order {
		r.order[i] = int32(i)
	}
	r.shufflePCG = rand.NewPCG(s.Seed, recipe.StreamShuffle)
	r.shuffler = rand.New(r.shufflePCG)
	rate := 0.0
	if s.Hidden > 0 {
		rate = s.Dropout
	}
	r.drop = recipe.NewDropout(rate, s.Seed)
	if s.ClassWeights == head.Balanced {
		r.classWeights = recipe.BalancedWeights(train.classCounts())
	}
	return r
}

// fillLabels writes the batch's targets: one-hot, smoothed as
// (1−s)·onehot + s/K, times the example's class weight.
func (r *ftRun) fillLabels(dst []float32, y []int32, rows []int32) {
	k := len(dst) / len(rows)
	sm := r.s.LabelSmoothing
	for i, row := range rows {
		c := int(y[row])
		w := 1.0
		if r.classWeights != nil {
			w = r.classWeights[c]
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

// endEpoch records e and tracks the best epoch and early stopping.
func (r *ftRun) endEpoch(e head.Epoch, sess *session, classes []string) {
	r.history = append(r.history, e)
	if r.bestEpoch < 0 || e.ValAccuracy > r.history[r.bestEpoch].ValAccuracy {
		r.bestEpoch, r.sinceBest = e.Epoch, 0
		if r.keepBest {
			r.best = sess.weights(classes)
		}
	} else {
		r.sinceBest++
	}
	if r.s.EarlyStop > 0 && r.sinceBest >= r.s.EarlyStop && e.Epoch+1 < r.s.Epochs {
		r.stopped = true
	}
}
