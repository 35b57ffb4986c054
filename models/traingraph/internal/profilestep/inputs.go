package main

import (
	"math"
	"math/rand/v2"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/models/traingraph"
)

// inputs makes a tensor of the right shape for every input of tg, in
// order: ReLU'd random maps, one-hot labels, small random parameters and
// moments. The values only need to be plausible: timing does not depend
// on them. On error, the tensors made so far are returned for destroy.
func inputs(tg *traingraph.Graph) ([]ort.Value, error) {
	rng := rand.New(rand.NewPCG(2, 2))
	shapes := tg.InputShapes(batch)
	var ins []ort.Value
	for _, name := range tg.Inputs {
		dims := shapes[name]
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		var v ort.Value
		var err error
		switch name {
		case traingraph.MapsInput:
			v, err = mapsTensor(rng, n, dims)
		case traingraph.LabelsInput:
			vals := make([]float32, n)
			for i := range batch {
				vals[i*tg.Spec.Classes+rng.IntN(tg.Spec.Classes)] = 1
			}
			v, err = ort.NewTensor(ort.NewShape(dims...), vals)
		default:
			v, err = ort.NewTensor(ort.NewShape(dims...), randSlice(rng, n, 0.02))
		}
		if err != nil {
			return ins, err
		}
		ins = append(ins, v)
	}
	return ins, nil
}

// mapsTensor is a float16 tensor of n ReLU'd standard normal values.
func mapsTensor(rng *rand.Rand, n int, dims []int64) (ort.Value, error) {
	raw := make([]byte, 2*n)
	for i, x := range randSlice(rng, n, 1) {
		h := float16(max(x, 0))
		raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
	}
	return ort.NewCustomDataTensor(ort.NewShape(dims...), raw, ort.TensorElementDataTypeFloat16)
}

// float16 truncates a non-negative x below 65504 to IEEE half precision;
// values below its normal range become 0.
func float16(x float32) uint16 {
	b := math.Float32bits(x)
	exp := int(b>>23&0xff) - 127 + 15
	if exp <= 0 {
		return 0
	}
	return uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * scale)
	}
	return s
}
