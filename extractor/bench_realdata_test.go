//go:build realdata

// Benchmarks on the real CIFAR-10 JPEGs of the shared folder
// ($TLEARN_SHARED, else ../shared next to the checkout); scripts/bench.sh
// runs them with -tags realdata, and they fail when the archive is missing.

package extractor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/realdata"
	"github.com/tlearn/tlearn/models"
)

// benchImages is the number of images per measurement: a multiple of every
// batch size measured, so that no run is padded. TLEARN_BENCH_IMAGES
// overrides it (VGG16 at 224 runs about 11 images/s on 2 cores).
func benchImages(b *testing.B) int {
	n := 192
	if s := os.Getenv("TLEARN_BENCH_IMAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 32 || v%32 != 0 {
			b.Fatalf("TLEARN_BENCH_IMAGES=%q: want a multiple of 32", s)
		}
		n = v
	}
	return n
}

// BenchmarkExtract measures end-to-end extraction (check pass, decoding,
// resizing, preprocessing, inference, cache writes) of real CIFAR-10 JPEGs
// through a synthetic full-width VGG16 at 224, next to a bare ORT session
// running the same model at the same batch size on a ready tensor, in the
// same run. Metrics: images/s of both, their ratio (goal >= 0.95), and the
// share of extract's wall time spent in ORT runs.
func BenchmarkExtract(b *testing.B) {
	archive := realdata.Path(b, "data", "cifar10-train-jpeg.tar.gz")
	ortlibtest.Init(b)
	n := benchImages(b)
	root := b.TempDir()
	modelDir := filepath.Join(root, "model")
	if _, err := models.WriteSynthPrepared(modelDir, models.SynthSettings{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	data := filepath.Join(root, "data")
	realdata.UnpackCIFAR(b, archive, realdata.Part{Dir: data, N: (n + 9) / 10})
	src := openSource(b, data)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}

	for _, batch := range []int{8, 16, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			e, err := Open(modelDir, Options{Batch: batch, ORT: ortlib.Options{Device: ortlib.DeviceCPU}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			bare := newBareSession(b, e)
			defer bare.Close()
			// One batch each first, so that neither side's first run (arena
			// allocation) is timed.
			bare.Run(b, 1)
			if _, err := e.Extract(context.Background(), src, idx[:batch], filepath.Join(root, fmt.Sprintf("warm-%d", batch)), Settings{}); err != nil {
				b.Fatal(err)
			}
			var extractTime, bareTime, inference time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				bare.Run(b, n/batch)
				bareTime += time.Since(t0)

				t0 = time.Now()
				res, err := e.Extract(context.Background(), src, idx, filepath.Join(root, fmt.Sprintf("cache-%d-%d", batch, i)), Settings{})
				if err != nil {
					b.Fatal(err)
				}
				extractTime += time.Since(t0)
				inference += res.Inference
				if res.Computed != n {
					b.Fatalf("computed %d images, want %d", res.Computed, n)
				}
			}
			runs := float64(b.N)
			extractIPS := runs * float64(n) / extractTime.Seconds()
			bareIPS := runs * float64(n) / bareTime.Seconds()
			b.ReportMetric(extractIPS, "images/s")
			b.ReportMetric(bareIPS, "bare-images/s")
			b.ReportMetric(extractIPS/bareIPS, "ratio")
			// Less sensitive to other load on the machine than the ratio:
			// the share of extract's time that ORT was running.
			b.ReportMetric(inference.Seconds()/extractTime.Seconds(), "ort-share")
		})
	}
}

// newBareSession is a bare ORT session over e's extractor.onnx, with
// e's batch and input side.
func newBareSession(b *testing.B, e *Extractor) *ortlibtest.BareSession {
	spec := e.Spec()
	return ortlibtest.NewBareSession(b, filepath.Join(e.ModelDir(), models.ExtractorFile), spec.Input, models.FeaturesOutput,
		e.Batch(), e.Size(), spec.Features.Dim)
}
