package ortlibtest

import (
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// BareSession is a plain ORT session over one model file with one float32
// NCHW input and one float32 [batch, dim] output, on the CPU with tlearn's
// session options, fed a fixed random input: the baseline that the
// extraction benchmarks compare tlearn against.
type BareSession struct {
	sess    *ort.AdvancedSession
	in, out *ort.Tensor[float32]
}

// NewBareSession opens model with input [batch, 3, side, side] and output
// [batch, dim]; Close releases it.
func NewBareSession(tb testing.TB, model, input, output string, batch, side, dim int) *BareSession {
	tb.Helper()
	s := &BareSession{}
	var err error
	if s.in, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), 3, int64(side), int64(side))); err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	in := s.in.GetData()
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	if s.out, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), int64(dim))); err != nil {
		tb.Fatal(err)
	}
	so, _, _, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceCPU})
	if err != nil {
		tb.Fatal(err)
	}
	defer so.Destroy()
	s.sess, err = ort.NewAdvancedSession(model, []string{input}, []string{output}, []ort.Value{s.in}, []ort.Value{s.out}, so)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Run runs the session batches times.
func (s *BareSession) Run(tb testing.TB, batches int) {
	for range batches {
		if err := s.sess.Run(); err != nil {
			tb.Fatal(err)
		}
	}
}

// Close releases the session and its tensors.
func (s *BareSession) Close() {
	s.sess.Destroy()
	s.in.Destroy()
	s.out.Destroy()
}
