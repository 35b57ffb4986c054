package fetch

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

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
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
		return nil, fmt.Errorf("fetch: verify: %w", ortlib.ErrNoORT)
	}
	so, _, _, err := ortlib.SessionOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("fetch: verify %s: %w", modelPath, err)
	}
	defer so.Destroy()
	ins, outs, err := ort.GetInputOutputInfoWithOptions(modelPath, so)
	if err != nil {
		return nil, fmt.Errorf("fetch: verify: load %s: %w", modelPath, err)
	}
	inNames, outNames := ioNames(ins), ioNames(outs)
	sess, err := ort.NewDynamicAdvancedSession(modelPath, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("fetch: verify: load %s: %w", modelPath, err)
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
	err := checkTestData(sess, &res, inNames, outNames)
	var p *problem
	if errors.As(err, &p) {
		res.Reason, res.Skipped = p.reason, p.skip
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Pass = res.Mismatches == 0
	return res, nil
}

// problem is a finding about a test data set's content: the set fails or,
// with skip, cannot be checked. checkTestData's steps return it as an
// error so that they stop at the first one.
type problem struct {
	reason string
	skip   bool
}

func (p *problem) Error() string { return p.reason }

func failf(format string, args ...any) error {
	return &problem{reason: fmt.Sprintf(format, args...)}
}

func skipf(format string, args ...any) error {
	return &problem{reason: fmt.Sprintf(format, args...), skip: true}
}

// checkTestData runs the model on the folder res.Dir and counts the
// compared and mismatching values into res.
func checkTestData(sess *ort.DynamicAdvancedSession, res *TestDataResult, inNames, outNames []string) error {
	inFiles, err := numberedFiles(res.Dir, "input_")
	if err != nil {
		return err
	}
	outFiles, err := numberedFiles(res.Dir, "output_")
	if err != nil {
		return err
	}
	if len(inFiles) != len(inNames) {
		return failf("%d input files for a model with %d inputs (%s)", len(inFiles), len(inNames), strings.Join(inNames, ", "))
	}
	if len(outFiles) == 0 || len(outFiles) > len(outNames) {
		return failf("%d output files for a model with %d outputs", len(outFiles), len(outNames))
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
	if err := readInputs(inFiles, inNames, inputs); err != nil {
		return err
	}
	if err := sess.Run(inputs, outputs); err != nil {
		return failf("ONNX Runtime cannot run the model on these inputs: %v", err)
	}
	for i, file := range outFiles {
		if err := compareOutput(file, i, outNames, outputs, res); err != nil {
			return err
		}
	}
	return nil
}

// readInputs makes a tensor of each input file, in the slot of the model
// input it names (else the file's position).
func readInputs(files, names []string, inputs []ort.Value) error {
	for i, file := range files {
		name, data, dims, err := readFloatTensor(file)
		if err != nil {
			return err
		}
		slot := slotOf(names, name, i)
		if inputs[slot] != nil {
			return failf("two input files for input %q", names[slot])
		}
		v, err := ort.NewTensor(ort.NewShape(dims...), data)
		if err != nil {
			return fmt.Errorf("fetch: verify %s: %w", file, err)
		}
		inputs[slot] = v
	}
	if i := slices.Index(inputs, nil); i >= 0 {
		return failf("no input file for input %q", names[i])
	}
	return nil
}

// compareOutput compares the i-th output file with the model output it
// names (else the i-th), counting into res.
func compareOutput(file string, i int, names []string, outputs []ort.Value, res *TestDataResult) error {
	name, want, dims, err := readFloatTensor(file)
	if err != nil {
		return err
	}
	slot := slotOf(names, name, i)
	got, ok := outputs[slot].(*ort.Tensor[float32])
	if !ok {
		return skipf("output %q is not a float32 tensor", names[slot])
	}
	gotData := got.GetData()
	if len(gotData) != len(want) {
		return failf("output %q has shape %v, %s expects %v", names[slot], got.GetShape(), filepath.Base(file), dims)
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
	return nil
}

// readFloatTensor reads a test data file: the tensor's name, values and
// dims. A tensor of another type than float32 is a skip problem, a
// malformed one a fail problem.
func readFloatTensor(file string) (name string, data []float32, dims []int64, err error) {
	t, err := readTensorProto(file)
	if err != nil {
		return "", nil, nil, err
	}
	if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return "", nil, nil, skipf("%s is %s; only float32 test data is checked", filepath.Base(file), onnxgraph.DataTypeName(t.GetDataType()))
	}
	data, dims, err = models.TensorFloat32(t)
	if err != nil {
		return "", nil, nil, failf("%s: %v", filepath.Base(file), err)
	}
	return t.GetName(), data, dims, nil
}

// slotOf is the index of name in names, or i when it is not there (test
// data may leave tensors unnamed).
func slotOf(names []string, name string, i int) int {
	if j := slices.Index(names, name); j >= 0 {
		return j
	}
	return i
}

// numberedFiles returns dir/<prefix><i>.pb for i = 0, 1, ... in order.
func numberedFiles(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fetch: verify: %w", err)
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
		return nil, fmt.Errorf("fetch: verify: %w", err)
	}
	if st.Size() > maxTestTensorBytes {
		return nil, fmt.Errorf("fetch: verify: %s: %d bytes is too large for a test tensor", file, st.Size())
	}
	b, err := fsutil.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("fetch: verify: %w", err)
	}
	t := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("fetch: verify: %s is not a TensorProto: %w", file, err)
	}
	return t, nil
}

// verifyUnpacked runs VerifyTestData on the test sets of an unpacked
// archive and reports each result through s.Progress.
func verifyUnpacked(ctx context.Context, s Settings, dir, model string) error {
	sets, err := testDataSets(dir)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		s.Progress.Log("the archive has no test_data_set_* folders; the model was not test-run")
		return nil
	}
	s.Progress.Log(fmt.Sprintf("running %s on %d test data set(s) under ONNX Runtime", filepath.Base(model), len(sets)))
	results, err := VerifyTestData(ctx, model, sets, s.ORT)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		s.Progress.Log(r.String())
		if !r.Pass && !r.Skipped {
			failed = append(failed, filepath.Base(r.Dir))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("fetch: %s: %w (%s; rtol/atol %g); the files are kept in %s",
			model, ErrTestDataMismatch, strings.Join(failed, ", "), TestDataRTol, dir)
	}
	return nil
}
