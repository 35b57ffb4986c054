package fetch

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// zooLikeArchive builds an archive shaped like the ONNX Model Zoo's: a
// TinyVGG and test data sets whose expected outputs ORT computes here.
// tamper changes one expected value of test_data_set_1 by far more than
// the tolerance.
func zooLikeArchive(t *testing.T, tamper bool) []byte {
	t.Helper()
	ortlibtest.Init(t)
	m := models.TinyVGG(7)
	model, err := models.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	in, out := m.Graph.Input[0].GetName(), m.Graph.Output[0].GetName()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{in}, []string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()
	rng := rand.New(rand.NewPCG(1, 2))
	entries := []fetchEntry{{Name: "tiny_vgg/model.onnx", Body: model}}
	for set := range 2 {
		dims := []int64{1, 3, 32, 32}
		x := make([]float32, 3*32*32)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		xt, err := ort.NewTensor(ort.NewShape(dims...), x)
		if err != nil {
			t.Fatal(err)
		}
		outputs := []ort.Value{nil}
		if err := sess.Run([]ort.Value{xt}, outputs); err != nil {
			t.Fatal(err)
		}
		y := outputs[0].(*ort.Tensor[float32])
		want := append([]float32(nil), y.GetData()...)
		yDims := append([]int64(nil), y.GetShape()...)
		xt.Destroy()
		y.Destroy()
		if tamper && set == 1 {
			want[len(want)/2] += 0.5
		}
		// Set 0 names its tensors like the zoo's; set 1 leaves them
		// unnamed, to be matched by position.
		inName, outName := in, out
		if set == 1 {
			inName, outName = "", ""
		}
		dir := "tiny_vgg/test_data_set_" + string(rune('0'+set)) + "/"
		entries = append(entries,
			fetchEntry{Name: dir + "input_0.pb", Body: marshalTensor(t, models.NewTensorFloat32(inName, dims, x))},
			fetchEntry{Name: dir + "output_0.pb", Body: marshalTensor(t, models.NewTensorFloat32(outName, yDims, want))})
	}
	return fetchTarGz(t, entries)
}

func marshalTensor(t *testing.T, tp *onnxpb.TensorProto) []byte {
	t.Helper()
	b, err := proto.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchVerifyRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		tamper bool
		noRun  bool
		want   error
		notes  []string
	}{
		{desc: "matching test data", notes: []string{"test_data_set_0: pass", "test_data_set_1: pass"}},
		{desc: "tampered test data", tamper: true, want: ErrTestDataMismatch, notes: []string{"test_data_set_0: pass", "test_data_set_1: FAIL: 1 of"}},
		{desc: "tampered test data, no verify run", tamper: true, noRun: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			payload := zooLikeArchive(t, tc.tamper)
			ts := httptest.NewServer(&fetchServer{payload: payload})
			defer ts.Close()
			dir := t.TempDir()
			rec := &progress.Recorder{}
			s := fetchSettingsFor(ts.URL+"/tiny-1.tar.gz", payload, dir)
			s.NoVerifyRun = tc.noRun
			s.Progress = rec
			s.ORT = ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}
			model, err := Get(context.Background(), s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if want := filepath.Join(dir, "tiny-1", "tiny_vgg", "model.onnx"); model != want {
				t.Errorf("model %q, want %q (also on failure, so the user can look)", model, want)
			}
			for _, n := range tc.notes {
				if !logged(rec, n) {
					t.Errorf("notes %q lack %q", rec.Logs(), n)
				}
			}
			if tc.noRun && logged(rec, "test_data_set") {
				t.Errorf("notes %q: the test data was run despite NoVerifyRun", rec.Logs())
			}
		})
	}
}

func TestVerifyTestDataContent(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	model, err := models.Marshal(models.TinyVGG(3))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(modelPath, model, 0o644); err != nil {
		t.Fatal(err)
	}
	x := models.NewTensorFloat32("", []int64{1, 3, 32, 32}, make([]float32, 3*32*32))
	y := models.NewTensorFloat32("", []int64{1, 32, 1, 1}, make([]float32, 32))
	ints := models.NewTensorInt64("", []int64{1}, []int64{1})
	for _, tc := range []struct {
		desc    string
		files   map[string]*onnxpb.TensorProto
		skipped bool
		reason  string
	}{
		{"no input", map[string]*onnxpb.TensorProto{"output_0.pb": y}, false, "0 input files"},
		{"no output", map[string]*onnxpb.TensorProto{"input_0.pb": x}, false, "0 output files"},
		{"int64 input", map[string]*onnxpb.TensorProto{"input_0.pb": ints, "output_0.pb": y}, true, "INT64"},
		{"int64 output", map[string]*onnxpb.TensorProto{"input_0.pb": x, "output_0.pb": ints}, true, "INT64"},
		{"wrong output shape", map[string]*onnxpb.TensorProto{"input_0.pb": x, "output_0.pb": models.NewTensorFloat32("", []int64{3}, make([]float32, 3))}, false, "has shape"},
		{"wrong input shape", map[string]*onnxpb.TensorProto{"input_0.pb": models.NewTensorFloat32("", []int64{3}, make([]float32, 3)), "output_0.pb": y}, false, "cannot run"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			set := filepath.Join(t.TempDir(), "test_data_set_0")
			if err := os.Mkdir(set, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, tp := range tc.files {
				if err := os.WriteFile(filepath.Join(set, name), marshalTensor(t, tp), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := VerifyTestData(context.Background(), modelPath, []string{set}, ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Pass || r.Skipped != tc.skipped || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("result %+v, want skipped=%v with reason %q", r, tc.skipped, tc.reason)
			}
		})
	}
	t.Run("not a TensorProto", func(t *testing.T) {
		set := filepath.Join(t.TempDir(), "test_data_set_0")
		os.Mkdir(set, 0o755)
		os.WriteFile(filepath.Join(set, "input_0.pb"), []byte{0xff, 0xff, 0xff}, 0o644)
		os.WriteFile(filepath.Join(set, "output_0.pb"), marshalTensor(t, y), 0o644)
		_, err := VerifyTestData(context.Background(), modelPath, []string{set}, ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1})
		if err == nil || !strings.Contains(err.Error(), "input_0.pb is not a TensorProto") {
			t.Errorf("err = %v", err)
		}
	})
}
