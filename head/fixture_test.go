package head

import (
	"fmt"
	"math/rand/v2"
)

// blobs makes n examples of k Gaussian clusters in d dimensions (unit
// noise around centres drawn with standard deviation sep), for tests and
// benchmarks. Rows are ordered class by class, as extract writes them. The
// centres only depend on d and k, so sets made with different seeds are
// samples of the same problem.
func blobs(n, d, k int, sep float64, seed uint64) *Data {
	r := rand.New(rand.NewPCG(uint64(d), uint64(k)))
	centres := make([][]float64, k)
	for c := range centres {
		centres[c] = make([]float64, d)
		for j := range centres[c] {
			centres[c][j] = sep * r.NormFloat64()
		}
	}
	r = rand.New(rand.NewPCG(seed, 99))
	data := &Data{X: make([]float32, n*d), Y: make([]int32, n)}
	for c := range k {
		data.Classes = append(data.Classes, fmt.Sprintf("class%d", c))
	}
	for i := range n {
		c := i * k / n
		data.Y[i] = int32(c)
		for j := range d {
			data.X[i*d+j] = float32(centres[c][j] + r.NormFloat64())
		}
	}
	return data
}
