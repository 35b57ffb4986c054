package finetune

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/models"
)

// ErrOtherModel is wrapped by StartWeights' error for a head run trained on
// the features of another model than the one being fine-tuned.
var ErrOtherModel = errors.New("finetune: the head was trained on another model's features")

// StartWeights assembles what FineTune starts from: block5's tensors of the
// prepared model in modelDir (models.ReadBlock5, torchvision layout) and,
// when headRun is not "", the head of that run directory, for two-stage
// fine-tuning (Classes are then the head's; without a head they are nil
// and FineTune draws a fresh head for the data's classes). modelSHA256 is
// the sha256 of the model's extractor.onnx: a head run that records
// another one is refused with an error wrapping ErrOtherModel.
func StartWeights(modelDir string, spec *models.Spec, modelSHA256, headRun string) (*head.Weights, error) {
	block5, err := models.ReadBlock5(modelDir, spec)
	if err != nil {
		return nil, err
	}
	start := &head.Weights{Tensors: map[string]head.Tensor{}}
	for _, t := range block5 {
		start.Tensors[t.Name] = head.Tensor{Shape: t.Shape, Data: t.Data}
	}
	if headRun == "" {
		return start, nil
	}
	w, err := run.LoadWeights(filepath.Join(headRun, run.WeightsFile))
	if err != nil {
		return nil, err
	}
	info, err := run.ReadInfo(headRun)
	if err != nil {
		return nil, err
	}
	if info.ModelSHA256 != "" && info.ModelSHA256 != modelSHA256 {
		return nil, fmt.Errorf("%w (%s records extractor.onnx sha256 %s, %s has %s)",
			ErrOtherModel, headRun, short(info.ModelSHA256), modelDir, short(modelSHA256))
	}
	for _, name := range []string{head.HiddenWeight, head.HiddenBias, head.OutputWeight, head.OutputBias} {
		if t, ok := w.Tensors[name]; ok {
			start.Tensors[name] = t
		}
	}
	start.Classes = w.Classes
	return start, nil
}

// short is the first 12 hex digits of a sha256, enough to tell models apart.
func short(sha string) string { return sha[:min(len(sha), 12)] }
