package head

import (
	"context"
	"fmt"
	"testing"

	"github.com/tlearn/tlearn/head/internal/kernel"
)

// benchBackends are the matrix-product implementations this build has.
func benchBackends() []gemmBackend {
	var bs []gemmBackend
	if kernel.HasAVX2 {
		bs = append(bs, kernelBackend(kernel.Best()))
	}
	if kernel.HasAVX512 {
		bs = append(bs, kernelBackend(kernel.Best()[1:]))
	}
	if openblasGemm != nil {
		bs = append(bs, openblasBackend())
	}
	return append(bs, gemmBackend{"gonum (pure Go)", gonumGemm, false})
}

// BenchmarkEpoch trains one epoch of the reference head (hidden 1024,
// dropout 0.5, batch 32, seed 1) on 10,000 rows of D features and 10
// classes and validates on 2,500: the size of the reference experiment.
// ms/epoch is the figure to compare (PyTorch's 50 epochs at D=1280 took
// 184 s on the project machine, 3.7 s per epoch).
func BenchmarkEpoch(b *testing.B) {
	for _, d := range []int{512, 1280} {
		train := blobs(10000, d, 10, 0.3, 1)
		val := blobs(2500, d, 10, 0.3, 2)
		for _, be := range benchBackends() {
			b.Run(fmt.Sprintf("D=%d/%s", d, be.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := Train(context.Background(), train, val, Settings{Epochs: 1, Seed: 1, gemm: &be}, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/epoch")
			})
		}
	}
}

// BenchmarkEpochEMA is BenchmarkEpoch's D=1280 epoch with the best
// kernels, without and with the moving average of the weights
// (Settings.EMA): what averaging after every step costs.
func BenchmarkEpochEMA(b *testing.B) {
	train := blobs(10000, 1280, 10, 0.3, 1)
	val := blobs(2500, 1280, 10, 0.3, 2)
	for _, ema := range []float64{0, 0.999} {
		b.Run(fmt.Sprintf("ema=%g", ema), func(b *testing.B) {
			for b.Loop() {
				if _, err := Train(context.Background(), train, val, Settings{Epochs: 1, Seed: 1, EMA: ema}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/epoch")
		})
	}
}
