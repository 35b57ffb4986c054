package finetune

import (
	"context"
	"fmt"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/traingraph"
)

// Evaluate runs a fine-tuned run's weights (the head and
// block5_conv{1,2,3}.*, as Result.Weights or the run's weights
// file) over d's block4_pool maps with the eval graph that FineTune
// validates with, and reports as Evaluate does: accuracy, top-k accuracy
// (topK < 1 means 5), per-class precision/recall/F1 and the confusion
// matrix. The caller initializes ONNX Runtime.
func Evaluate(ctx context.Context, w *head.Weights, d *MapsData, topK int, rt ortlib.Options) (*head.Report, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("finetune: evaluation maps: %w", err)
	}
	if w == nil {
		return nil, fmt.Errorf("%w: no weights", ErrData)
	}
	if _, ok := w.Tensors[head.OutputWeight]; !ok {
		return nil, fmt.Errorf("%w: the weights have no head (%s)", ErrData, head.OutputWeight)
	}
	for i := 1; i <= 3; i++ {
		if _, ok := w.Tensors[models.Block5WeightName(i)]; !ok {
			return nil, fmt.Errorf("%w: the weights have no %s (not a fine-tuned run?)", ErrData, models.Block5WeightName(i))
		}
	}
	// The checks of a two-stage start are exactly what evaluation needs:
	// block5 fits the maps' channels, the head fits block5 and the classes.
	hidden := w.HiddenSize()
	if err := checkStart(w, d, Settings{Settings: head.Settings{Hidden: hidden}}); err != nil {
		return nil, err
	}
	spec := traingraph.Spec{
		Channels: d.Shape[0], Height: d.Shape[1], Width: d.Shape[2],
		Hidden: hidden, Classes: len(d.Classes),
		Optimizer: traingraph.OptimizerAdam, FreezeBlock5: true,
	}
	sess, err := newEvalSession(spec, rt)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if err := sess.load(w, nil); err != nil {
		return nil, err
	}
	tally := head.NewTally(w.Classes, topK)
	if _, _, err := validate(ctx, sess, d, nil, head.DefaultBatch, 0, tally); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("finetune: evaluation stopped: %w", ctx.Err())
		}
		return nil, err
	}
	return tally.Report(), nil
}
