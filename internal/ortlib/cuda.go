package ortlib

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// CUDAProviderLib is the file name of ONNX Runtime's CUDA execution
// provider; ORT looks for it (and libonnxruntime_providers_shared.so) in
// the core library's folder.
const CUDAProviderLib = "libonnxruntime_providers_cuda.so"

// runtimeLoaded are libraries the CUDA provider opens itself at run time
// (dlopen), so DT_NEEDED does not list them though the provider needs them.
var runtimeLoaded = []string{"libcudnn.so.9"}

// driverVersionFile is the NVIDIA kernel driver's version file; a variable
// so that tests can point it at a file of their own.
var driverVersionFile = "/proc/driver/nvidia/version"

// CUDAError says why the CUDA execution provider is unusable: which
// provider file, which of its libraries the loader cannot find, whether an
// NVIDIA driver is there, and ONNX Runtime's own message.
type CUDAError struct {
	Library  string       // the core ONNX Runtime library
	Provider string       // the CUDA provider beside it; "" when there is none
	Missing  []Dependency // the provider's libraries the loader would not find
	Driver   bool         // an NVIDIA driver is present
	// PluginOnly: the core was built without the CUDA bridge and the
	// provider is a plugin library (ONNX Runtime 1.29 of `make setup-gpu`),
	// attached through the environment's OrtEpDevices once it loads.
	PluginOnly bool
	// NoDevice: the plugin provider loaded but ONNX Runtime lists no
	// CUDA device for it (no NVIDIA GPU that it can see).
	NoDevice bool
	Devices  []EPDevice // ONNX Runtime's devices, when NoDevice
	Detail   string     // ONNX Runtime's message, on one line
}

func (e *CUDAError) Error() string {
	switch {
	case e.Provider == "":
		return fmt.Sprintf("the ONNX Runtime library %s has no CUDA execution provider beside it (%s; `make setup-gpu` installs one in .ort-gpu/lib): %s",
			e.Library, CUDAProviderLib, e.Detail)
	case e.NoDevice:
		msg := fmt.Sprintf("the CUDA execution provider %s is unusable: %s", e.Provider, e.Detail)
		if len(e.Missing) > 0 {
			msg += "; also missing " + missingNames(e.Missing)
		}
		return msg
	case len(e.Missing) > 0:
		return fmt.Sprintf("the CUDA execution provider %s did not load: missing %s (%s)", e.Provider, missingNames(e.Missing), e.Detail)
	}
	return fmt.Sprintf("the CUDA execution provider %s is unusable: %s", e.Provider, e.Detail)
}

// Short is the one line of an automatic fallback to CPU.
func (e *CUDAError) Short() string {
	what := "CUDA is unusable"
	switch {
	case e.Provider == "":
		what = "this ONNX Runtime library has no CUDA provider"
	case e.NoDevice:
		what = "the CUDA provider found no CUDA device"
	case len(e.Missing) > 0:
		what = "the CUDA provider misses " + missingNames(e.Missing)
	}
	return "running on CPU: " + what + " (`tlearn doctor` explains)"
}

func missingNames(deps []Dependency) string {
	names := make([]string, len(deps))
	for i, d := range deps {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

// pluginState remembers, per initialized environment, the result of
// registering the CUDA provider as a plugin library: ORT registers a
// library once per environment. Close resets it. Guarded by mu.
var pluginState struct {
	tried bool
	err   error
}

// appendCUDA appends the CUDA execution provider to so, or returns a
// *CUDAError saying why not. A core library with the CUDA bridge takes the
// provider through the legacy call; one without it (the 1.29 core of `make
// setup-gpu`) takes the provider beside it as a plugin library: registered
// with the environment, then attached on the first CUDA device that
// GetEpDevices lists (appendEP).
func appendCUDA(so *ort.SessionOptions) error {
	co, err := ort.NewCUDAProviderOptions()
	if err == nil {
		err = so.AppendExecutionProviderCUDA(co)
		co.Destroy()
		if err == nil {
			return nil
		}
	}
	lib, _ := Loaded()
	cerr := diagnose(lib.Path, oneLine(err))
	if cerr.Provider == "" || !strings.Contains(strings.ToLower(err.Error()), "not enabled in this build") {
		return cerr
	}
	cerr.PluginOnly = true
	// Registering the plugin loads it: that is what fails on a machine
	// without the CUDA libraries, naming the first one missing.
	if perr := registerPlugin(cerr.Provider); perr != nil {
		cerr.Detail = oneLine(perr)
		return cerr
	}
	_, aerr := appendEP(so, CUDAEP)
	if aerr == nil {
		return nil
	}
	var nd *NoDeviceError
	if errors.As(aerr, &nd) {
		cerr.NoDevice, cerr.Devices = true, nd.Devices
		cerr.Detail = "the CUDA provider registered but found no CUDA device (ONNX Runtime's devices: " + nd.listing() + ")"
		return cerr
	}
	cerr.Detail = oneLine(aerr)
	return cerr
}

func registerPlugin(provider string) error {
	mu.Lock()
	defer mu.Unlock()
	if !pluginState.tried {
		pluginState.tried = true
		pluginState.err = ort.RegisterExecutionProviderLibrary("CUDA", provider)
	}
	return pluginState.err
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// diagnose looks at the files: the provider beside the core library at
// lib, the provider's missing libraries, the driver.
func diagnose(lib, detail string) *CUDAError {
	e := &CUDAError{Library: lib, Detail: detail, Driver: DriverVersion() != "" || libCUDA(lib) != ""}
	p := filepath.Join(filepath.Dir(lib), CUDAProviderLib)
	if st, err := os.Stat(p); lib == "" || err != nil || st.IsDir() {
		return e
	}
	e.Provider = p
	r := NewResolver()
	deps, err := r.Dependencies(p)
	if err != nil {
		e.Detail += "; " + err.Error()
		return e
	}
	for _, d := range deps {
		if d.Missing() {
			e.Missing = append(e.Missing, d)
		}
	}
	for _, name := range runtimeLoaded {
		if path, err := r.Resolve(name, p); err == nil && path == "" {
			e.Missing = append(e.Missing, Dependency{Name: name, NeededBy: p + " (at run time)"})
		}
	}
	return e
}

// DriverVersion is the first line of the NVIDIA kernel driver's version
// file, or "" when no driver is loaded.
func DriverVersion() string {
	b, err := os.ReadFile(driverVersionFile)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(first)
}

// libCUDA is where the loader finds the driver's user-space library
// libcuda.so.1 for the library at lib (or for this system when lib is
// ""), or "".
func libCUDA(lib string) string {
	r := NewResolver()
	if lib != "" {
		if p, err := r.Resolve("libcuda.so.1", lib); err == nil {
			return p
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p, _ := r.Resolve("libcuda.so.1", exe)
	return p
}

// present reports whether a CUDA fallback is worth a line: an NVIDIA
// driver or a CUDA provider is there, so the user may have expected CUDA.
func (e *CUDAError) present() bool { return e.Driver || e.Provider != "" }

// CUDAReport is what doctor says about CUDA.
type CUDAReport struct {
	Usable   bool
	Err      *CUDAError   // why not, when not Usable
	Deps     []Dependency // the provider's shared libraries, resolved (nil without a provider)
	Driver   string       // the NVIDIA driver's version line, "" when none
	LibCUDA  string       // where libcuda.so.1 is, "" when the loader finds none
	GPUs     []string     // nvidia-smi's "name, memory" lines, when it runs
	Provider string       // the CUDA provider file, "" when none
	// Devices are ONNX Runtime's execution-provider devices after the
	// attempt (GetEpDevices): a CUDAExecutionProvider one once the plugin
	// provider loaded and found a GPU. Nil for a library before 1.22.
	Devices []EPDevice
}

// CheckCUDA tries the CUDA execution provider of the loaded library and
// describes the machine around it. It needs Init.
func CheckCUDA() (CUDAReport, error) {
	lib, ok := Loaded()
	if !ok {
		return CUDAReport{}, ErrNoORT
	}
	rep := CUDAReport{Driver: DriverVersion(), LibCUDA: libCUDA(lib.Path), GPUs: GPUs()}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return rep, fmt.Errorf("ortlib: session options: %w", err)
	}
	defer so.Destroy()
	err = appendCUDA(so)
	var cerr *CUDAError
	if err == nil {
		rep.Usable = true
		cerr = diagnose(lib.Path, "")
	} else if !errors.As(err, &cerr) {
		return rep, err
	} else {
		rep.Err = cerr
	}
	rep.Provider = cerr.Provider
	rep.Devices, _ = EPDevices()
	if cerr.Provider != "" {
		rep.Deps, _ = NewResolver().Dependencies(cerr.Provider)
	}
	return rep, nil
}

// GPUs runs nvidia-smi, when there is one, for each GPU's name and memory.
func GPUs() []string {
	bin, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil
	}
	out, err := exec.Command(bin, "--query-gpu=name,memory.total", "--format=csv,noheader").Output()
	if err != nil {
		return nil
	}
	var gpus []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			gpus = append(gpus, l)
		}
	}
	return gpus
}

// Provides names what ships a CUDA-side library, for doctor's fix: the
// CUDA major version is the soname's where it carries one (libcudart.so.13
// is CUDA 13's runtime).
func Provides(soname string) string {
	base, ver, _ := strings.Cut(soname, ".so")
	ver = strings.TrimPrefix(ver, ".")
	cudaPkg := func(what, apt string) string {
		if ver == "" {
			return what + " (NVIDIA's CUDA repository: " + apt + "-<version>)"
		}
		return fmt.Sprintf("%s of CUDA %s (NVIDIA's CUDA repository: %s-%s-<minor>)", what, ver, apt, ver)
	}
	switch base {
	case "libcuda":
		return "the NVIDIA driver's user-space library (install the NVIDIA driver; no CUDA toolkit package has it)"
	case "libcudart":
		return cudaPkg("the CUDA runtime", "cuda-cudart")
	case "libcublas", "libcublasLt":
		return cudaPkg("cuBLAS", "libcublas")
	case "libcufft":
		return "cuFFT (NVIDIA's CUDA repository: libcufft-<cuda version>)"
	case "libcurand":
		return "cuRAND (NVIDIA's CUDA repository: libcurand-<cuda version>)"
	case "libnvrtc":
		return "NVRTC (NVIDIA's CUDA repository: cuda-nvrtc-<cuda version>)"
	case "libcudnn":
		return "cuDNN " + ver + " (NVIDIA's repository: libcudnn" + ver + "-cuda-<cuda major>, or the cudnn tarball)"
	}
	return "not a CUDA library: the system's packages (apt-file search " + soname + ")"
}
