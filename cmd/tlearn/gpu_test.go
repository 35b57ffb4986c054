package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/tol"
	"github.com/tlearn/tlearn/models"
)

// TestGPULibraryFallbackFeatures extracts the tiny model's features with
// the built binary under both libraries (one process loads one ONNX
// Runtime): the GPU-capable 1.29 library's CPU fallback (--device auto)
// gives the bytes of its --device cpu run, and features within 1e-5 of
// the CPU library's (1.27); --device cuda fails naming the provider.
func TestGPULibraryFallbackFeatures(t *testing.T) {
	t.Parallel()
	gpuLib := ortlibtest.GPULib(t)
	ortlibtest.Init(t)
	cpuLib, _ := ortlib.Loaded()
	bin := buildTlearn(t)
	root := t.TempDir()
	model := filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	writePNGs(t, data, "cat", 6)
	writePNGs(t, data, "dog", 5)
	extract := func(name, lib, device string) (string, string, error) {
		dir := filepath.Join(root, name)
		cmd := exec.Command(bin, "extract", "--data", data, "--cache", dir, "--model", model, "--size", "32", "--batch", "2",
			"--threads", "1", "--device", device, "--ort-lib", lib)
		cmd.Env = append(os.Environ(), "TLEARN_ORT_LIB=", ortlib.EnvLibrary+"=")
		var errs bytes.Buffer
		cmd.Stderr = &errs
		err := cmd.Run()
		return dir, errs.String(), err
	}
	features := func(dir string) []float32 {
		c, err := cache.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return slices.Clone(c.Features)
	}
	driver := ortlib.DriverVersion() != ""

	cpuDir, cpuErr, err := extract("cpu127", cpuLib.Path, "auto")
	if err != nil {
		t.Fatalf("1.27 auto: %v\n%s", err, cpuErr)
	}
	if !driver && strings.Contains(cpuErr, "running on CPU") {
		t.Errorf("1.27 auto printed a fallback line without an NVIDIA driver or CUDA provider:\n%s", cpuErr)
	}
	if !strings.Contains(cpuErr, "images/s on cpu") {
		t.Errorf("1.27 auto does not say where it ran:\n%s", cpuErr)
	}
	plainDir, plainErr, err := extract("cpu129", gpuLib, "cpu")
	if err != nil {
		t.Fatalf("1.29 cpu: %v\n%s", err, plainErr)
	}
	autoDir, autoErr, err := extract("auto129", gpuLib, "auto")
	if err != nil {
		t.Fatalf("1.29 auto: %v\n%s", err, autoErr)
	}
	if strings.Contains(autoErr, "images/s on cuda") {
		t.Skip("CUDA ran: no fallback to compare")
	}
	var lines []string
	for _, l := range strings.Split(autoErr, "\n") {
		if strings.Contains(l, "running on CPU") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "tlearn doctor") {
		t.Errorf("1.29 auto (a CUDA provider is present): fallback lines %q, want one naming tlearn doctor:\n%s", lines, autoErr)
	}

	want, plain, auto := features(cpuDir), features(plainDir), features(autoDir)
	if len(want) == 0 || len(want) != len(auto) {
		t.Fatalf("%d features under 1.27, %d under 1.29", len(want), len(auto))
	}
	a, errA := os.ReadFile(filepath.Join(plainDir, "features.npy"))
	b, errB := os.ReadFile(filepath.Join(autoDir, "features.npy"))
	if errA != nil || errB != nil || !bytes.Equal(a, b) || !slices.Equal(plain, auto) {
		t.Errorf("features.npy: 1.29's CPU fallback differs from its --device cpu run (%v, %v)", errA, errB)
	}
	if err := tol.Floats(auto, want, 1e-5, 0); err != nil {
		t.Errorf("1.29 fallback vs 1.27 features: %v", err)
	}
	diff := make([]float32, len(want))
	for i := range want {
		diff[i] = auto[i] - want[i]
	}
	t.Logf("%d features: 1.29 fallback = 1.29 cpu byte for byte; max |1.29 - 1.27| = %.3g (largest feature %.3g)", len(want), tol.MaxAbs(diff), tol.MaxAbs(want))

	// doctor names the provider, the libraries ldd would not find and
	// what ships them, the driver, and the fix.
	out, err := exec.Command(bin, "doctor", "--ort-lib", gpuLib).CombinedOutput()
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	wants := []string{"onnxruntime: 1.29.0", "provider: " + filepath.Join(filepath.Dir(gpuLib), ortlib.CUDAProviderLib), "NVIDIA driver: ",
		"ONNX Runtime device: CPUExecutionProvider on CPU"}
	if !driver {
		wants = append(wants, "libraries missing", "libcudart.so.13: the CUDA runtime of CUDA 13", "libcublas.so.13: cuBLAS of CUDA 13", "libcudnn.so.9: cuDNN 9", "fix: install ", "LD_LIBRARY_PATH=",
			"takes CUDA as a plugin provider: once the provider loads, tlearn attaches it")
	}
	for _, w := range wants {
		if !strings.Contains(string(out), w) {
			t.Errorf("doctor --ort-lib %s lacks %q:\n%s", gpuLib, w, out)
		}
	}

	_, cudaErr, err := extract("cuda129", gpuLib, "cuda")
	if err == nil || !strings.Contains(cudaErr, ortlib.CUDAProviderLib) {
		t.Errorf("1.29 --device cuda: %v, want a failure naming %s:\n%s", err, ortlib.CUDAProviderLib, cudaErr)
	}
}

// The CPU library of `make setup` has no CUDA provider: doctor says so
// and names make setup-gpu.
func TestDoctorCPULibrary(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	code, stdout, stderr := runTlearn(t, "doctor")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rep, err := ortlib.CheckCUDA()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Provider != "" || rep.Usable {
		t.Skipf("the loaded library has a CUDA provider (%s)", rep.Provider)
	}
	for _, w := range []string{"CUDA: not available", "provider: not found (no " + ortlib.CUDAProviderLib, "fix: make setup-gpu", "NVIDIA driver: "} {
		if !strings.Contains(stdout, w) {
			t.Errorf("doctor lacks %q:\n%s", w, stdout)
		}
	}
}
