package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// The ONNX Model Zoo checks its models with numpy's assert_allclose at
// these tolerances: |got - want| <= TestDataATol + TestDataRTol*|want|.
const (
	TestDataRTol = 1e-3
	TestDataATol = 1e-3
)

// maxTestTensorBytes bounds a test data file read into memory; the zoo's
// VGG16 inputs are 602 kB.
const maxTestTensorBytes = 256 << 20

// TestDataResult is the outcome of one test_data_set_* folder.
type TestDataResult struct {
	Dir        string
	Pass       bool
	Skipped    bool    // the set could not be checked (e.g. non-float32 tensors); Reason says why
	Reason     string  // why it failed or was skipped; "" on pass
	Compared   int     // output values compared
	Mismatches int     // values outside the tolerance
	MaxAbsDiff float64 // largest |got - want|
}

func (r TestDataResult) String() string {
	name := filepath.Base(r.Dir)
	switch {
	case r.Skipped:
		return fmt.Sprintf("%s: skipped: %s", name, r.Reason)
	case r.Pass:
		return fmt.Sprintf("%s: pass (%d values, max |diff| %.3g, rtol/atol %g)", name, r.Compared, r.MaxAbsDiff, TestDataRTol)
	case r.Compared > 0:
		return fmt.Sprintf("%s: FAIL: %d of %d values outside rtol/atol %g (max |diff| %.3g)%s",
			name, r.Mismatches, r.Compared, TestDataRTol, r.MaxAbsDiff, prefixed("; ", r.Reason))
	}
	return fmt.Sprintf("%s: FAIL: %s", name, r.Reason)
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// VerifyTestData runs the ONNX model at modelPath under ONNX Runtime on each
// ONNX test data set folder (input_<i>.pb, output_<i>.pb: serialized
// TensorProtos, as the ONNX Model Zoo ships them) and compares the outputs
// with the expected ones within TestDataRTol/TestDataATol. Inputs are
// matched to the model's inputs by tensor name, else by position; only
// float32 tensors are checked. ORT must be initialized. The error is for
// failures to run at all; a mismatch is a result with Pass false.
func VerifyTestData(ctx context.Context, modelPath string, sets []string, opts ortlib.Options) ([]TestDataResult, error) {
	if !ort.IsInitialized() {
		return nil, errors.New("models: verify: ONNX Runtime is not initialized (ortlib.Init)")
	}
	so, _, _, err := ortlib.SessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("models: verify %s: %w", modelPath, err)
	}
	defer so.Destroy()
	ins, outs, err := ort.GetInputOutputInfoWithOptions(modelPath, so)
	if err != nil {
		return nil, fmt.Errorf("models: verify: load %s: %w", modelPath, err)
	}
	inNames, outNames := ioNames(ins), ioNames(outs)
	sess, err := ort.NewDynamicAdvancedSession(modelPath, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("models: verify: load %s: %w", modelPath, err)
	}
	defer sess.Destroy()
	results := make([]TestDataResult, 0, len(sets))
	for _, dir := range sets {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r, err := runTestData(sess, dir, inNames, outNames)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func ioNames(infos []ort.InputOutputInfo) []string {
	names := make([]string, len(infos))
	for i, info := range infos {
		names[i] = info.Name
	}
	return names
}

// runTestData checks one folder. Problems with the folder's content are
// results (the archive is wrong, not the program); I/O failures and ORT
// errors are errors.
func runTestData(sess *ort.DynamicAdvancedSession, dir string, inNames, outNames []string) (TestDataResult, error) {
	res := TestDataResult{Dir: dir}
	fail := func(format string, args ...any) (TestDataResult, error) {
		res.Reason = fmt.Sprintf(format, args...)
		return res, nil
	}
	skip := func(format string, args ...any) (TestDataResult, error) {
		res.Skipped = true
		return fail(format, args...)
	}
	inFiles, err := numberedFiles(dir, "input_")
	if err != nil {
		return res, err
	}
	outFiles, err := numberedFiles(dir, "output_")
	if err != nil {
		return res, err
	}
	if len(inFiles) != len(inNames) {
		return fail("%d input files for a model with %d inputs (%s)", len(inFiles), len(inNames), strings.Join(inNames, ", "))
	}
	if len(outFiles) == 0 || len(outFiles) > len(outNames) {
		return fail("%d output files for a model with %d outputs", len(outFiles), len(outNames))
	}
	inputs := make([]ort.Value, len(inNames))
	outputs := make([]ort.Value, len(outNames))
	defer func() {
		for _, v := range slices.Concat(inputs, outputs) {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, file := range inFiles {
		t, err := readTensorProto(file)
		if err != nil {
			return res, err
		}
		if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
			return skip("%s is %s; only float32 test data is checked", filepath.Base(file), onnxgraph.DataTypeName(t.GetDataType()))
		}
		data, dims, err := TensorFloat32(t)
		if err != nil {
			return fail("%s: %v", filepath.Base(file), err)
		}
		slot := i
		if j := slices.Index(inNames, t.GetName()); j >= 0 {
			slot = j
		}
		if inputs[slot] != nil {
			return fail("two input files for input %q", inNames[slot])
		}
		v, err := ort.NewTensor(ort.NewShape(dims...), data)
		if err != nil {
			return res, fmt.Errorf("models: verify %s: %w", file, err)
		}
		inputs[slot] = v
	}
	if i := slices.Index(inputs, nil); i >= 0 {
		return fail("no input file for input %q", inNames[i])
	}
	if err := sess.Run(inputs, outputs); err != nil {
		return fail("ONNX Runtime cannot run the model on these inputs: %v", err)
	}
	for i, file := range outFiles {
		t, err := readTensorProto(file)
		if err != nil {
			return res, err
		}
		if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
			return skip("%s is %s; only float32 test data is checked", filepath.Base(file), onnxgraph.DataTypeName(t.GetDataType()))
		}
		want, dims, err := TensorFloat32(t)
		if err != nil {
			return fail("%s: %v", filepath.Base(file), err)
		}
		slot := i
		if j := slices.Index(outNames, t.GetName()); j >= 0 {
			slot = j
		}
		got, ok := outputs[slot].(*ort.Tensor[float32])
		if !ok {
			return skip("output %q is not a float32 tensor", outNames[slot])
		}
		gotData := got.GetData()
		if len(gotData) != len(want) {
			return fail("output %q has shape %v, %s expects %v", outNames[slot], got.GetShape(), filepath.Base(file), dims)
		}
		for k, w := range want {
			g := float64(gotData[k])
			d := math.Abs(g - float64(w))
			if math.IsNaN(g) && math.IsNaN(float64(w)) {
				d = 0 // numpy's assert_allclose treats NaNs as equal
			}
			if !(d <= TestDataATol+TestDataRTol*math.Abs(float64(w))) {
				res.Mismatches++
			}
			if d > res.MaxAbsDiff || math.IsNaN(d) {
				res.MaxAbsDiff = d
			}
		}
		res.Compared += len(want)
	}
	res.Pass = res.Mismatches == 0
	return res, nil
}

// numberedFiles returns dir/<prefix><i>.pb for i = 0, 1, ... in order.
func numberedFiles(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("models: verify: %w", err)
	}
	var idx []int
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".pb")
		if n, err := strconv.Atoi(num); ok && err == nil && n >= 0 && e.Type().IsRegular() {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	files := make([]string, len(idx))
	for i, n := range idx {
		files[i] = filepath.Join(dir, prefix+strconv.Itoa(n)+".pb")
	}
	return files, nil
}

func readTensorProto(file string) (*onnxpb.TensorProto, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("models: verify: %w", err)
	}
	if st.Size() > maxTestTensorBytes {
		return nil, fmt.Errorf("models: verify: %s: %d bytes is too large for a test tensor", file, st.Size())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("models: verify: %w", err)
	}
	t := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("models: verify: %s is not a TensorProto: %w", file, err)
	}
	return t, nil
}

// verifyUnpacked runs VerifyTestData on the test sets of an unpacked
// archive and reports each result through s.Progress.
func verifyUnpacked(ctx context.Context, s FetchSettings, dir, model string) error {
	sets, err := testDataSets(dir)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		s.Progress.Note("the archive has no test_data_set_* folders; the model was not test-run")
		return nil
	}
	s.Progress.Note(fmt.Sprintf("running %s on %d test data set(s) under ONNX Runtime", filepath.Base(model), len(sets)))
	results, err := VerifyTestData(ctx, model, sets, s.ORT)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		s.Progress.Note(r.String())
		if !r.Pass && !r.Skipped {
			failed = append(failed, filepath.Base(r.Dir))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("models: fetch: %s: %w (%s; rtol/atol %g); the files are kept in %s",
			model, ErrTestDataMismatch, strings.Join(failed, ", "), TestDataRTol, dir)
	}
	return nil
}
