package traingraph

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// ortRun is a session over a generated graph with preallocated inputs;
// outputs are allocated by the first Run and reused afterwards.
type ortRun struct {
	sess     *ort.DynamicAdvancedSession
	ins, out []ort.Value
	inNames  []string
	outNames []string
}

func newORTRun(tb testing.TB, m *onnxpb.ModelProto, inNames []string, ins []ort.Value, outNames []string) *ortRun {
	tb.Helper()
	ortlibtest.Init(tb)
	data, err := models.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	so, _, _, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceCPU})
	if err != nil {
		tb.Fatal(err)
	}
	defer so.Destroy()
	// TLEARN_ORT_CONFIG="key=value,..." sets session config entries, for
	// benchmarks that compare ORT settings.
	if cfg := os.Getenv("TLEARN_ORT_CONFIG"); cfg != "" {
		for _, kv := range strings.Split(cfg, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if err := so.AddSessionConfigEntry(k, v); err != nil {
				tb.Fatal(err)
			}
		}
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, outNames, so)
	if err != nil {
		tb.Fatalf("create session: %v", err)
	}
	r := &ortRun{sess: sess, ins: ins, out: make([]ort.Value, len(outNames)), inNames: inNames, outNames: outNames}
	tb.Cleanup(func() {
		if r.sess != nil {
			r.sess.Destroy()
		}
		for _, v := range r.ins {
			v.Destroy()
		}
		for _, v := range r.out {
			if v != nil {
				v.Destroy()
			}
		}
	})
	return r
}

func (r *ortRun) run(tb testing.TB) {
	tb.Helper()
	if err := r.sess.Run(r.ins, r.out); err != nil {
		tb.Fatalf("run: %v", err)
	}
}

// output returns output name's values (float32).
func (r *ortRun) output(tb testing.TB, name string) []float32 {
	tb.Helper()
	for i, n := range r.outNames {
		if n == name {
			return r.out[i].(*ort.Tensor[float32]).GetData()
		}
	}
	tb.Fatalf("no output %q", name)
	return nil
}

func f32Tensor(tb testing.TB, data []float32, dims ...int64) *ort.Tensor[float32] {
	tb.Helper()
	t, err := ort.NewTensor(ort.NewShape(dims...), data)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// f16Tensor makes a float16 tensor from float32 values (rounded to
// nearest even) and returns the float16 values read back as float32.
func f16Tensor(tb testing.TB, data []float32, dims ...int64) (ort.Value, []float32) {
	tb.Helper()
	bits := make([]uint16, len(data))
	cache.F32ToF16(bits, data)
	back := make([]float32, len(data))
	cache.F16ToF32(back, bits)
	raw := make([]byte, 2*len(data))
	for i, h := range bits {
		raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
	}
	t, err := ort.NewCustomDataTensor(ort.NewShape(dims...), raw, ort.TensorElementDataTypeFloat16)
	if err != nil {
		tb.Fatal(err)
	}
	return t, back
}

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * scale)
	}
	return s
}
