//go:build realdata

// The int8 extraction benchmark on the real vgg16-cifar5 conv base and
// CIFAR-10 JPEGs of the shared folder ($TLEARN_SHARED, else ../shared);
// it fails when they are missing. Run with -tags realdata.

package quantize

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/realdata"
	"github.com/tlearn/tlearn/models"
)

// benchBatch is the batch of every measurement.
const benchBatch = 8

// BenchmarkInt8Extract prepares vgg16-cifar5, quantizes it (calibrated on
// 64 CIFAR-10 images at the size measured, else default settings) and
// measures, in the same run, at
// 224 and at 32, batch 8: extract end to end (decoding, resizing,
// preprocessing, inference, cache writes) with the float32 and the int8
// model, and a bare ORT session of each model on a ready tensor. Metrics:
// images/s of the four; int8-speedup (int8 extract / float32 extract,
// the goal ≥ 3 on AVX-512 VNNI), bare-speedup (the same for the
// bare sessions), each extract's ratio to its own bare session, and the
// mean cosine of the int8 features to float32's on the benchmark's
// images (not the calibration images). TLEARN_BENCH_IMAGES sets the
// images per measurement at 224 (default 64; eight times as many at 32).
func BenchmarkInt8Extract(b *testing.B) {
	onnx := realdata.Path(b, "models", "vgg16-cifar5.onnx")
	archive := realdata.Path(b, "data", "cifar10-train-jpeg.tar.gz")
	ortlibtest.Init(b)
	n := 64
	if s := os.Getenv("TLEARN_BENCH_IMAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < benchBatch || v%benchBatch != 0 {
			b.Fatalf("TLEARN_BENCH_IMAGES=%q: want a multiple of %d", s, benchBatch)
		}
		n = v
	}
	root := b.TempDir()
	f32, i8 := filepath.Join(root, "model"), filepath.Join(root, "model8")
	if _, err := models.Prepare(context.Background(), onnx, models.PrepareSettings{SkipCheck: true}, f32); err != nil {
		b.Fatal(err)
	}
	calib, data := filepath.Join(root, "calib"), filepath.Join(root, "data")
	// Calibration images and measured images are different files.
	realdata.UnpackCIFAR(b, archive, realdata.Part{Dir: calib, N: 10}, realdata.Part{Dir: data, N: (8*n + 9) / 10})
	// One int8 model per size, each calibrated at the size it extracts
	// at: activation ranges at 32 are not those at 224.
	int8Dir := map[int]string{}
	for _, size := range []int{224, 32} {
		int8Dir[size] = fmt.Sprintf("%s-%d", i8, size)
		t0 := time.Now()
		if _, err := Quantize(context.Background(), f32, calib, int8Dir[size], Settings{Size: size}); err != nil {
			b.Fatal(err)
		}
		b.Logf("quantized in %v (calibration on %d images at %d)", time.Since(t0).Round(time.Millisecond), DefaultImages, size)
	}
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		b.Fatal(err)
	}

	for _, size := range []int{224, 32} {
		count := n
		if size == 32 {
			count = 8 * n
		}
		idx := make([]int, count)
		for i := range idx {
			idx[i] = i
		}
		b.Run(fmt.Sprintf("size=%d/batch=%d", size, benchBatch), func(b *testing.B) {
			type side struct {
				name     string
				e        *extractor.Extractor
				bare     *ortlibtest.BareSession
				ext, brt time.Duration
				cache    string
			}
			var sides []*side
			for _, m := range []struct{ name, dir string }{{"float32", f32}, {"int8", int8Dir[size]}} {
				e, err := extractor.Open(m.dir, extractor.Options{Size: size, Batch: benchBatch, ORT: ortlib.Options{Device: ortlib.DeviceCPU}})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				s := &side{name: m.name, e: e, bare: newBareSession(b, e)}
				defer s.bare.Close()
				// One batch each first: no first run (arena allocation) is timed.
				s.bare.Run(b, 1)
				if _, err := e.Extract(context.Background(), src, idx[:benchBatch], filepath.Join(root, fmt.Sprintf("warm-%s-%d", m.name, size)), extractor.Settings{}); err != nil {
					b.Fatal(err)
				}
				sides = append(sides, s)
			}
			for i := 0; b.Loop(); i++ {
				// Interleaved, so that a change of the machine's load
				// falls on both models alike.
				for _, s := range sides {
					t0 := time.Now()
					s.bare.Run(b, count/benchBatch)
					s.brt += time.Since(t0)
					s.cache = filepath.Join(root, fmt.Sprintf("cache-%s-%d-%d", s.name, size, i))
					t0 = time.Now()
					res, err := s.e.Extract(context.Background(), src, idx, s.cache, extractor.Settings{})
					if err != nil {
						b.Fatal(err)
					}
					s.ext += time.Since(t0)
					if res.Computed != count {
						b.Fatalf("%s: computed %d images, want %d", s.name, res.Computed, count)
					}
				}
			}
			runs := float64(b.N) * float64(count)
			ips := func(d time.Duration) float64 { return runs / d.Seconds() }
			fe, fb, qe, qb := ips(sides[0].ext), ips(sides[0].brt), ips(sides[1].ext), ips(sides[1].brt)
			b.ReportMetric(fe, "f32-images/s")
			b.ReportMetric(fb, "f32-bare-images/s")
			b.ReportMetric(qe, "int8-images/s")
			b.ReportMetric(qb, "int8-bare-images/s")
			b.ReportMetric(qe/fe, "int8-speedup")
			b.ReportMetric(qb/fb, "bare-speedup")
			b.ReportMetric(fe/fb, "f32-ratio")
			b.ReportMetric(qe/qb, "int8-ratio")
			b.ReportMetric(meanCosine(b, sides[0].cache, sides[1].cache), "cosine")
		})
	}
}

// TestRealFeaturesCosine: on real CIFAR-10 JPEGs not used for
// calibration, the int8 vgg16-cifar5's features have a mean cosine ≥
// 0.999 to float32's, at 32 (the side it was trained at; calibrated there).
func TestRealFeaturesCosine(t *testing.T) {
	onnx := realdata.Path(t, "models", "vgg16-cifar5.onnx")
	archive := realdata.Path(t, "data", "cifar10-train-jpeg.tar.gz")
	ortlibtest.Init(t)
	root := t.TempDir()
	f32, i8 := filepath.Join(root, "model"), filepath.Join(root, "model8")
	if _, err := models.Prepare(context.Background(), onnx, models.PrepareSettings{SkipCheck: true, DefaultSize: 32}, f32); err != nil {
		t.Fatal(err)
	}
	calib, data := filepath.Join(root, "calib"), filepath.Join(root, "data")
	realdata.UnpackCIFAR(t, archive, realdata.Part{Dir: calib, N: 10}, realdata.Part{Dir: data, N: 20})
	if _, err := Quantize(context.Background(), f32, calib, i8, Settings{Threads: 2}); err != nil {
		t.Fatal(err)
	}
	fp, qp := features(t, f32, data, 32), features(t, i8, data, 32)
	var sum float64
	for i := range fp {
		sum += cosine(fp[i], qp[i])
	}
	mean := sum / float64(len(fp))
	t.Logf("mean cosine int8 vs float32 over %d real images: %.6f", len(fp), mean)
	if mean < 0.999 {
		t.Errorf("mean cosine %.6f, want >= 0.999", mean)
	}
}

// meanCosine is the mean cosine similarity of the rows of two caches'
// features.
func meanCosine(b *testing.B, a, c string) float64 {
	ca, err := cache.OpenFeatures(a)
	if err != nil {
		b.Fatal(err)
	}
	defer ca.Close()
	cc, err := cache.OpenFeatures(c)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	d := ca.Manifest.FeatureDim
	var sum float64
	rows := len(ca.Features) / d
	for r := range rows {
		sum += cosine(ca.Features[r*d:(r+1)*d], cc.Features[r*d:(r+1)*d])
	}
	if rows == 0 {
		return math.NaN()
	}
	return sum / float64(rows)
}

// newBareSession is a bare ORT session over e's extractor.onnx, with
// e's batch and input side.
func newBareSession(b *testing.B, e *extractor.Extractor) *ortlibtest.BareSession {
	spec := e.Spec()
	return ortlibtest.NewBareSession(b, filepath.Join(e.ModelDir(), models.ExtractorFile), spec.Input, models.FeaturesOutput,
		e.Batch(), e.Size(), spec.Features.Dim)
}
