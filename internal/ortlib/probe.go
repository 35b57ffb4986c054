package ortlib

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoORT is returned by Probe when the process has not initialized ONNX
// Runtime (cmd/tlearn calls Init in main, tests call ortlibtest.Init).
var ErrNoORT = errors.New("ortlib: ONNX Runtime is not initialized (ortlib.Init)")

// Tensor is one input of a probe run: a graph input's name, its shape and
// its values, a []float32 or a []uint8.
type Tensor struct {
	Name  string
	Shape []int64
	Data  any
}

// ProbeOutput is what a probe run tells about one output.
type ProbeOutput struct {
	Shape   []int64
	Float32 bool      // the element type is float32
	Data    []float32 // the values when Float32, else nil
}

// Probe runs a serialized model once on CPU with the given inputs and
// returns the named outputs. It is for short checks of a model that is
// being built (shapes, a sanity run at a small batch), so it never asks
// for CUDA and keeps no session. A cancelled ctx terminates the run in
// flight (RunWithContext) and Probe returns ctx's error; at a large input
// side one run takes seconds, so an interrupt must not wait for it. It
// fails with ErrNoORT before Init. An
// input whose Data is neither []float32 nor []uint8 is a programmer error
// and panics.
func Probe(ctx context.Context, model []byte, inputs []Tensor, outputs []string, threads int) ([]ProbeOutput, error) {
	if !ort.IsInitialized() {
		return nil, ErrNoORT
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	so, _, _, err := SessionOptions(Options{Device: DeviceCPU, Threads: threads})
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Name
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, names, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer sess.Destroy()
	ins := make([]ort.Value, len(inputs))
	outs := make([]ort.Value, len(outputs))
	defer func() {
		for _, v := range slices.Concat(ins, outs) {
			if !isNil(v) {
				v.Destroy()
			}
		}
	}()
	for i, in := range inputs {
		if ins[i], err = newTensor(in); err != nil {
			return nil, fmt.Errorf("onnxruntime: input %s: %w", in.Name, err)
		}
	}
	opts, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	defer opts.Destroy()
	if err := RunWithContext(ctx, opts, func() error { return sess.RunWithOptions(ins, outs, opts) }); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, err
		}
		return nil, fmt.Errorf("onnxruntime: %w", err)
	}
	res := make([]ProbeOutput, len(outs))
	for i, o := range outs {
		res[i].Shape = slices.Clone(o.GetShape())
		if t, ok := o.(*ort.Tensor[float32]); ok {
			res[i].Float32 = true
			res[i].Data = slices.Clone(t.GetData())
		}
	}
	return res, nil
}

func newTensor(in Tensor) (ort.Value, error) {
	shape := ort.NewShape(in.Shape...)
	switch d := in.Data.(type) {
	case []float32:
		return ort.NewTensor(shape, d)
	case []uint8:
		return ort.NewTensor(shape, d)
	}
	panic(fmt.Sprintf("ortlib: Probe input %s holds %T, want []float32 or []uint8", in.Name, in.Data))
}

// isNil reports whether v is nil or an interface holding a nil pointer,
// which Destroy would dereference.
func isNil(v ort.Value) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}
