package ortlib_test

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	// The 1.29 core lists its execution-provider devices: the CPU's.
	devs, err := ortlib.EPDevices()
	if err != nil || !slices.ContainsFunc(devs, func(d ortlib.EPDevice) bool { return d.EP == "CPUExecutionProvider" && d.Type == "CPU" }) {
		t.Fatalf("EPDevices on %s: %v, %v; want the CPU provider's device", lib.Path, devs, err)
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
	// The core has no CUDA bridge: registering the plugin provider is what
	// failed, on the first library the loader missed.
	if ce.PluginOnly && len(ce.Missing) > 0 && !ce.NoDevice && !strings.Contains(ce.Detail, ce.Missing[0].Name) {
		t.Errorf("plugin registration: %q does not name %s", ce.Detail, ce.Missing[0].Name)
	}
	for _, d := range ce.Missing {
		if !strings.Contains(err.Error(), d.Name) {
			t.Errorf("error %q does not name %s", err, d.Name)
		}
	}
	if len(ce.Missing) > 0 && !ce.NoDevice && !strings.Contains(err.Error(), "did not load") {
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

// TestGPULibraryNoDevice registers the real CUDA plugin provider of `make
// setup-gpu` on a machine without a GPU: stand-ins for the CUDA libraries
// it misses (every function it imports from them, returning 0) let it load,
// and ONNX Runtime then lists no CUDA device for it. --device cuda must
// say exactly that, and auto say it in one line. It runs in a subprocess,
// whose loader reads LD_LIBRARY_PATH at start.
func TestGPULibraryNoDevice(t *testing.T) {
	t.Parallel()
	lib := ortlibtest.GPULib(t)
	if ortlib.DriverVersion() != "" {
		t.Skip("an NVIDIA driver is here: the stand-ins would shadow the real CUDA libraries")
	}
	stubs := cudaStubs(t, filepath.Join(filepath.Dir(lib), ortlib.CUDAProviderLib))
	cmd := exec.Command(os.Args[0], "-test.run=^TestGPUNoDeviceChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envGPUChild+"=nodevice", ortlib.EnvLibrary+"="+lib,
		"LD_LIBRARY_PATH="+stubs+string(filepath.ListSeparator)+os.Getenv("LD_LIBRARY_PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestGPUNoDeviceChild") {
		t.Fatalf("child with %s and stand-ins in %s: %v\n%s", lib, stubs, err, out)
	}
	t.Logf("%s", out)
}

// cudaStubs builds, in a temporary folder, a stand-in for each library
// of the provider that the loader does not find: a shared library with that
// soname, its symbol version, and every function the provider imports from
// it as one that returns 0.
func cudaStubs(t *testing.T, provider string) string {
	t.Helper()
	deps, err := ortlib.NewResolver().Dependencies(provider)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(provider)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range deps {
		if !d.Missing() || d.NeededBy != provider {
			continue
		}
		var src strings.Builder
		versioned := false
		for _, s := range syms {
			if s.Library == d.Name {
				fmt.Fprintf(&src, "long %s(void) { return 0; }\n", s.Name)
				versioned = versioned || s.Version == d.Name
			}
		}
		c := filepath.Join(dir, d.Name+".c")
		if err := os.WriteFile(c, []byte(src.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-shared", "-fPIC", "-o", filepath.Join(dir, d.Name), "-Wl,-soname," + d.Name, c}
		if versioned {
			vs := filepath.Join(dir, d.Name+".map")
			if err := os.WriteFile(vs, []byte(d.Name+" { global: *; };\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "-Wl,--version-script="+vs)
		}
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestGPUNoDeviceChild(t *testing.T) {
	if os.Getenv(envGPUChild) != "nodevice" {
		t.Skip("runs only as TestGPULibraryNoDevice's subprocess")
	}
	if _, err := ortlib.Init(""); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceCUDA, Threads: 1})
	var ce *ortlib.CUDAError
	if !errors.As(err, &ce) || !ce.PluginOnly || !ce.NoDevice {
		t.Fatalf("device cuda: err = %v (%+v), want a *CUDAError of a plugin provider with no device", err, ce)
	}
	for _, w := range []string{"the CUDA provider registered but found no CUDA device", "CPUExecutionProvider on CPU"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("device cuda: %q lacks %q", err, w)
		}
	}
	for _, d := range ce.Missing {
		if !strings.Contains(d.NeededBy, "at run time") {
			t.Errorf("%s missing, though the stand-ins are on LD_LIBRARY_PATH", d.Name)
		}
	}
	so, used, why, err := ortlib.SessionOptions(ortlib.Options{Device: ortlib.DeviceAuto, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	so.Destroy()
	if used != ortlib.DeviceCPU || why != "running on CPU: the CUDA provider found no CUDA device (`tlearn doctor` explains)" {
		t.Errorf("auto: used %q, why %q", used, why)
	}
	rep, err := ortlib.CheckCUDA()
	if err != nil || rep.Usable || rep.Err == nil || !rep.Err.NoDevice {
		t.Fatalf("CheckCUDA: %+v, %v", rep, err)
	}
	for _, d := range rep.Devices {
		if d.EP == ortlib.CUDAEP {
			t.Errorf("a CUDA device listed without a GPU: %s", d)
		}
	}
	t.Logf("cuda: %v", ce)
	t.Logf("auto: %s", why)
}
