package ortlib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvLibrary names the environment variable that points at the library.
const EnvLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// LibName is the file name of the Linux library that `make setup` installs.
const LibName = "libonnxruntime.so.1"

// InstallDir is the project's install folder for the library. `make build`
// sets it to the absolute path of the checkout's .ort/lib with -ldflags -X;
// when empty, the folder is looked for next to the executable and above the
// working directory.
var InstallDir = ""

// ErrNotFound is returned when no candidate library exists.
var ErrNotFound = errors.New("ortlib: ONNX Runtime shared library not found")

// Candidate is one place the library may be, with where the idea came from.
type Candidate struct {
	Path   string
	Source string // "--ort-lib", "$ONNXRUNTIME_SHARED_LIBRARY_PATH", "install folder", "system"
}

// Candidates lists the places to look, in the documented order: the explicit
// path (the --ort-lib flag), the environment variable, the project's install
// folder, then the system's library paths.
func Candidates(explicit string) []Candidate { return candidates(explicit, InstallDir) }

// candidates is Candidates with installDir in place of InstallDir, so
// that tests need not change the variable.
func candidates(explicit, installDir string) []Candidate {
	var cs []Candidate
	if explicit != "" {
		cs = append(cs, Candidate{explicit, "--ort-lib"})
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		cs = append(cs, Candidate{env, "$" + EnvLibrary})
	}
	for _, dir := range installDirs(installDir) {
		cs = append(cs, Candidate{filepath.Join(dir, LibName), "install folder"})
	}
	var sys []string
	if ld := os.Getenv("LD_LIBRARY_PATH"); ld != "" {
		sys = append(sys, filepath.SplitList(ld)...)
	}
	sys = append(sys, "/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64")
	for _, dir := range sys {
		for _, name := range []string{LibName, "libonnxruntime.so"} {
			cs = append(cs, Candidate{filepath.Join(dir, name), "system"})
		}
	}
	return cs
}

func installDirs(installDir string) []string {
	var dirs []string
	if installDir != "" {
		dirs = append(dirs, installDir)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			d := filepath.Dir(exe)
			dirs = append(dirs, filepath.Join(d, ".ort", "lib"), filepath.Join(d, "..", ".ort", "lib"))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, filepath.Join(d, ".ort", "lib"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return dirs
}

// Find returns the first candidate that exists. An explicit path or an
// environment variable that names a missing file is an error of its own, so
// that a typo is not papered over by a library found elsewhere.
func Find(explicit string) (Candidate, error) { return find(Candidates(explicit)) }

func find(cs []Candidate) (Candidate, error) {
	for _, c := range cs {
		st, err := os.Stat(c.Path)
		if err == nil && !st.IsDir() {
			abs, aerr := filepath.Abs(c.Path)
			if aerr == nil {
				c.Path = abs
			}
			return c, nil
		}
		if c.Source != "install folder" && c.Source != "system" {
			return Candidate{}, fmt.Errorf("ortlib: %s names %s: %w", c.Source, c.Path, statErr(st, err))
		}
	}
	return Candidate{}, fmt.Errorf("%w: looked for %s at the explicit path, $%s, the install folder (.ort/lib) and the system library paths",
		ErrNotFound, LibName, EnvLibrary)
}

func statErr(st os.FileInfo, err error) error {
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory, not the library file")
	}
	return nil
}

var (
	mu      sync.Mutex
	loaded  Candidate
	initErr error
	done    bool
)

// The environment logs only fatal messages: ORT's own log would print a red multi-line error for
// every probe of a missing CUDA provider; tlearn reports such conditions itself
// in one line, and every failure still comes back as an error status.

// Init finds the library (see Find) and initializes the process-wide ORT
// environment. It is idempotent: later calls return the first call's result.
func Init(explicit string) (Candidate, error) {
	mu.Lock()
	defer mu.Unlock()
	if done {
		return loaded, initErr
	}
	done = true
	c, err := Find(explicit)
	if err != nil {
		initErr = err
		return c, err
	}
	ort.SetSharedLibraryPath(c.Path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		initErr = fmt.Errorf("ortlib: load %s (from %s): %w", c.Path, c.Source, err)
		return c, initErr
	}
	loaded = c
	return c, nil
}

// Loaded reports the library that Init loaded, if any.
func Loaded() (Candidate, bool) {
	mu.Lock()
	defer mu.Unlock()
	return loaded, done && initErr == nil
}

// Version is the loaded library's version string, or "" before Init.
func Version() string {
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}

// Device names where sessions run.
type Device string

const (
	DeviceAuto Device = "auto" // CUDA when the library and a GPU offer it, else CPU
	DeviceCPU  Device = "cpu"
	DeviceCUDA Device = "cuda" // CUDA or an error
)

// ParseDevice checks a --device value.
func ParseDevice(s string) (Device, error) {
	switch d := Device(strings.ToLower(s)); d {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	case "":
		return DeviceAuto, nil
	}
	return "", fmt.Errorf("ortlib: unknown device %q (want auto, cpu or cuda)", s)
}

// Options are session settings shared by every ORT session tlearn makes.
type Options struct {
	Device  Device // zero value means DeviceAuto
	Threads int    // intra-op threads; 0 means one per CPU core
}

// SessionOptions builds ORT session options for opts. It returns the device
// actually used and, when auto fell back to CPU on a machine where CUDA
// was to be expected (an NVIDIA driver, or a CUDA provider beside the
// library), a one-line reason; on a machine with neither the fallback is
// silent (why is ""). DeviceCUDA fails with a *CUDAError inside. The caller
// owns the returned options and must Destroy them.
func SessionOptions(opts Options) (so *ort.SessionOptions, used Device, why string, err error) {
	so, err = ort.NewSessionOptions()
	if err != nil {
		return nil, "", "", fmt.Errorf("ortlib: session options: %w", err)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if err = so.SetIntraOpNumThreads(threads); err == nil {
		err = so.SetInterOpNumThreads(1)
	}
	if err != nil {
		so.Destroy()
		return nil, "", "", fmt.Errorf("ortlib: set threads: %w", err)
	}
	dev := opts.Device
	if dev == "" {
		dev = DeviceAuto
	}
	if dev == DeviceCPU {
		return so, DeviceCPU, "", nil
	}
	cudaErr := appendCUDA(so)
	if cudaErr == nil {
		return so, DeviceCUDA, "", nil
	}
	if dev == DeviceCUDA {
		so.Destroy()
		return nil, "", "", fmt.Errorf("ortlib: device cuda: %w", cudaErr)
	}
	var ce *CUDAError
	if errors.As(cudaErr, &ce) && !ce.present() {
		return so, DeviceCPU, "", nil
	}
	if ce != nil {
		return so, DeviceCPU, ce.Short(), nil
	}
	return so, DeviceCPU, "running on CPU: " + cudaErr.Error(), nil
}

// CUDAStatus tells whether a session could use CUDA, and why not.
func CUDAStatus() (bool, string) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return false, err.Error()
	}
	defer so.Destroy()
	if err := appendCUDA(so); err != nil {
		return false, err.Error()
	}
	return true, "CUDA execution provider available"
}
