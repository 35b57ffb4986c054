package models

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// ErrNoORT is returned when a step needs a probe run but the process has
// not initialized ONNX Runtime (cmd/tlearn and ortlibtest.Init do).
var ErrNoORT = errors.New("models: ONNX Runtime is not initialized (ortlib.Init)")

// probeOutput is what a probe run tells about one output.
type probeOutput struct {
	Shape []int64
	Float bool // element type float32
	Data  []float32
}

// probe runs a serialized model once on CPU with a deterministic input of
// the given shape and reports its outputs. Probes are small (batch 1 or 2 at
// test sizes), so they never ask for CUDA.
func probe(model []byte, input string, shape []int64, outputs []string, threads int) ([]probeOutput, error) {
	if !ort.IsInitialized() {
		return nil, ErrNoORT
	}
	so, _, _, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceCPU, Threads: threads})
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{input}, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer sess.Destroy()
	n, _ := numElements(shape)
	data := make([]float32, n)
	for i := range data {
		// A smooth, varied pattern in the range of preprocessed pixels.
		data[i] = float32(i%251)/125 - 1
	}
	in, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(outputs))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	if err := sess.Run([]ort.Value{in}, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	res := make([]probeOutput, len(outs))
	for i, o := range outs {
		res[i].Shape = append([]int64(nil), o.GetShape()...)
		if t, ok := o.(*ort.Tensor[float32]); ok {
			res[i].Float = true
			res[i].Data = append([]float32(nil), t.GetData()...)
		}
	}
	return res, nil
}
