package ortlib_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// envGPUChild marks the subprocess of TestGPULibrary: one process loads
// one ONNX Runtime library, and this test process has loaded the CPU one.
const envGPUChild = "TLEARN_TEST_GPU_CHILD"

// TestGPULibrary runs TestGPULibraryChild in a process of its own with the
// library of `make setup-gpu` (ONNX Runtime 1.29, CUDA provider beside it).
func TestGPULibrary(t *testing.T) {
	t.Parallel()
	lib := ortlibtest.GPULib(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestGPULibraryChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envGPUChild+"=1", ortlib.EnvLibrary+"="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestGPULibraryChild") {
		t.Fatalf("child with %s: %v\n%s", lib, err, out)
	}
	t.Logf("%s", out)
}

func TestGPULibraryChild(t *testing.T) {
	if os.Getenv(envGPUChild) != "1" {
		t.Skip("runs only as TestGPULibrary's subprocess")
	}
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatal(err)
	}
	if v := ortlib.Version(); v != "1.29.0" {
		t.Fatalf("%s is ONNX Runtime %s, want 1.29.0 (scripts/setup-gpu.sh pins it)", lib.Path, v)
	}
	// The CPU provider of the GPU-capable library runs onnxruntime_go's API.
	inputs := []ortlib.Tensor{
		{Name: "x", Shape: []int64{1, 2}, Data: []uint8{3, 250}},
		{Name: "b", Shape: []int64{1, 2}, Data: []float32{0.5, -1}},
	}
	res, err := ortlib.Probe(context.Background(), castModel(t), inputs, []string{"y"}, 1)
	if err != nil || !slices.Equal(res[0].Data, []float32{3.5, 249}) {
		t.Fatalf("probe on %s: %+v, %v", lib.Path, res, err)
	}

	rep, err := ortlib.CheckCUDA()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Usable {
		t.Skip("CUDA is usable here: no fallback to test")
	}
	if rep.Provider == "" {
		t.Fatalf("no CUDA provider found beside %s", lib.Path)
	}
	// --device cuda fails, naming every library the loader misses: the
	// same ones ldd prints as "not found".
	_, _, _, err = ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceCUDA, Threads: 1})
	var ce *ortlib.CUDAError
	if !errors.As(err, &ce) {
		t.Fatalf("device cuda: err = %v, want a *CUDAError", err)
	}
	if ldd, lerr := exec.Command("ldd", rep.Provider).Output(); lerr == nil {
		var notFound []string
		for _, l := range strings.Split(string(ldd), "\n") {
			if name, _, ok := strings.Cut(strings.TrimSpace(l), " => not found"); ok {
				notFound = append(notFound, name)
			}
		}
		var ours []string
		for _, d := range ce.Missing {
			if !strings.Contains(d.NeededBy, "at run time") {
				ours = append(ours, d.Name)
			}
		}
		slices.Sort(notFound)
		slices.Sort(ours)
		if !slices.Equal(ours, notFound) {
			t.Errorf("missing %v, ldd says not found: %v", ours, notFound)
		}
	}
	for _, d := range ce.Missing {
		if !strings.Contains(err.Error(), d.Name) {
			t.Errorf("error %q does not name %s", err, d.Name)
		}
	}
	if len(ce.Missing) > 0 && !strings.Contains(err.Error(), "did not load") {
		t.Errorf("error %q does not say the provider did not load", err)
	}
	// auto falls back to CPU with one short line: a provider is present.
	so, used, why, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceAuto, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	so.Destroy()
	if used != ortlib.DeviceCPU || !strings.HasPrefix(why, "running on CPU: ") || !strings.Contains(why, "tlearn doctor") || strings.Contains(why, "\n") || len(why) > 200 {
		t.Errorf("auto: used %q, why %q; want cpu and one short line that names tlearn doctor", used, why)
	}
	if len(ce.Missing) > 0 && !strings.Contains(why, ce.Missing[0].Name) {
		t.Errorf("auto: why %q does not name %s", why, ce.Missing[0].Name)
	}
	t.Logf("auto: %s", why)
	t.Logf("cuda: %v", ce)
}
