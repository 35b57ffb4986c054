package models

import (
	"fmt"
	"path/filepath"
)

// Block5WeightName and Block5BiasName name block5's convolutions, i = 1..3,
// as the run folder's weights file and the training graphs
// (models/traingraph) do.
func Block5WeightName(i int) string { return fmt.Sprintf("block5_conv%d.weight", i) }
func Block5BiasName(i int) string   { return fmt.Sprintf("block5_conv%d.bias", i) }

// Block5Tensor is one of block5's parameters in torchvision layout
// (weights [C,C,3,3], biases [C]).
type Block5Tensor struct {
	Name  string // Block5WeightName(i) or Block5BiasName(i)
	Shape []int
	Data  []float32
}

// ReadBlock5 reads block5's three convolutions from the prepared model in
// dir (extractor.onnx, initializers named by spec.Block5), checking that
// they are 3×3 convolutions of spec.Block5.Channels channels. It fails
// for a model that is not VGG-shaped (spec.Block5 nil).
func ReadBlock5(dir string, spec *Spec) ([]Block5Tensor, error) {
	path := filepath.Join(dir, ExtractorFile)
	if spec.Block5 == nil || spec.Maps == nil {
		return nil, fmt.Errorf("models: %s: the model (preset %q) has no VGG block5, so it cannot be fine-tuned; train a head on its features instead", path, spec.Preset)
	}
	m, err := Load(path)
	if err != nil {
		return nil, err
	}
	c := spec.Block5.Channels
	var out []Block5Tensor
	for i := range 3 {
		for _, x := range []struct {
			init, name string
			shape      []int
		}{
			{spec.Block5.ConvWeights[i], Block5WeightName(i + 1), []int{c, c, 3, 3}},
			{spec.Block5.ConvBiases[i], Block5BiasName(i + 1), []int{c}},
		} {
			t, ok := Initializer(m, x.init)
			if !ok {
				return nil, fmt.Errorf("models: %s: block5 initializer %q not found", path, x.init)
			}
			data, dims, err := TensorFloat32(t)
			if err != nil {
				return nil, fmt.Errorf("models: %s: %w", path, err)
			}
			if !sameDims(dims, x.shape) {
				return nil, fmt.Errorf("models: %s: block5 tensor %q has shape %v, want %v", path, x.init, dims, x.shape)
			}
			out = append(out, Block5Tensor{Name: x.name, Shape: x.shape, Data: data})
		}
	}
	return out, nil
}

func sameDims(a []int64, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != int64(b[i]) {
			return false
		}
	}
	return true
}
