package run

import (
	"fmt"
	"math/rand/v2"

	"github.com/tlearn/tlearn/head"
)

// clusters makes n examples of k well-separated Gaussian clusters in d
// dimensions, class by class; the centres only depend on d and k.
func clusters(n, d, k int, seed uint64) *head.Data {
	r := rand.New(rand.NewPCG(uint64(d), uint64(k)))
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = 3 * r.NormFloat64()
	}
	r = rand.New(rand.NewPCG(seed, 99))
	data := &head.Data{X: make([]float32, n*d), Y: make([]int32, n)}
	for c := range k {
		data.Classes = append(data.Classes, fmt.Sprintf("class%d", c))
	}
	for i := range n {
		c := i * k / n
		data.Y[i] = int32(c)
		for j := range d {
			data.X[i*d+j] = float32(centres[c*d+j] + r.NormFloat64())
		}
	}
	return data
}

// testWeights is a small valid head: D=3, H=2, K=2.
func testWeights(hidden bool) *head.Weights {
	w := &head.Weights{Classes: []string{"cat", "dog"}, Tensors: map[string]head.Tensor{
		head.OutputWeight: {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}},
		head.OutputBias:   {Shape: []int{2}, Data: []float32{-1, 1}},
	}}
	if hidden {
		w.Tensors[head.HiddenWeight] = head.Tensor{Shape: []int{3, 2}, Data: []float32{0.5, -0.5, 1.5, 2.5, -3, 1e-8}}
		w.Tensors[head.HiddenBias] = head.Tensor{Shape: []int{2}, Data: []float32{0.25, 0}}
	} else {
		w.Tensors[head.OutputWeight] = head.Tensor{Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}}
	}
	return w
}
