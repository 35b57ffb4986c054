package ortlib

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindOrder(t *testing.T) {
	// Not parallel: it sets environment variables.
	dir := t.TempDir()
	flagLib := filepath.Join(dir, "flag.so")
	envLib := filepath.Join(dir, "env.so")
	for _, p := range []string{flagLib, envLib} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		desc, explicit, env string
		wantPath, wantSrc   string
		wantErr             string
	}{
		{desc: "flag wins over env", explicit: flagLib, env: envLib, wantPath: flagLib, wantSrc: "--ort-lib"},
		{desc: "env when no flag", env: envLib, wantPath: envLib, wantSrc: "$" + EnvLibrary},
		{desc: "missing flag path is an error, not a fallback", explicit: filepath.Join(dir, "nope.so"), env: envLib, wantErr: "nope.so"},
		{desc: "missing env path is an error", env: filepath.Join(dir, "gone.so"), wantErr: "gone.so"},
		{desc: "a folder is not a library", explicit: dir, wantErr: "is a directory"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Setenv(EnvLibrary, tc.env)
			c, err := Find(tc.explicit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != tc.wantPath || c.Source != tc.wantSrc {
				t.Errorf("got %+v, want %s from %s", c, tc.wantPath, tc.wantSrc)
			}
		})
	}
}

func TestFindNothingSaysHowToInstall(t *testing.T) {
	// Not parallel: it sets environment variables and changes the working directory.
	t.Setenv(EnvLibrary, "")
	t.Setenv("LD_LIBRARY_PATH", "")
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	c, err := find(candidates("", "")) // as if `make build` had not set InstallDir
	if err == nil {
		if c.Source == "system" {
			t.Skipf("a system ONNX Runtime exists at %s", c.Path)
		}
		if !strings.HasPrefix(c.Path, wd) {
			t.Fatalf("found %+v outside the checkout", c)
		}
		t.Skip("the test binary sits inside the checkout, so its install folder is found next to it")
	}
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), EnvLibrary) || !strings.Contains(err.Error(), ".ort/lib") {
		t.Errorf("error %q does not name where it looked", err)
	}
}

func TestParseDevice(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Device{"": DeviceAuto, "auto": DeviceAuto, "CPU": DeviceCPU, "cuda": DeviceCUDA} {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseDevice("gpu"); err == nil {
		t.Error("ParseDevice(gpu) succeeded")
	}
}

// The npm library of `make setup` has no CUDA provider beside it: auto
// falls back to CPU, silently on a machine without an NVIDIA driver and
// with one short line where a driver is; cuda fails, saying why.
func TestCUDAFallback(t *testing.T) {
	t.Parallel()
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	if ok, _ := CUDAStatus(); ok {
		t.Skip("this ONNX Runtime has a working CUDA provider")
	}
	so, used, why, err := SessionOptions(Options{Device: DeviceAuto, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	so.Destroy()
	lib, _ := Loaded()
	driver := DriverVersion() != "" || libCUDA(lib.Path) != ""
	switch {
	case used != DeviceCPU:
		t.Errorf("auto: used %q, want cpu", used)
	case !driver && why != "":
		t.Errorf("auto printed %q on a machine without an NVIDIA driver or CUDA provider; want silence", why)
	case driver && (!strings.Contains(why, "CPU") || !strings.Contains(why, "tlearn doctor") || strings.Contains(why, "\n")):
		t.Errorf("auto with an NVIDIA driver: why %q, want one line naming tlearn doctor", why)
	}
	_, _, _, err = SessionOptions(Options{Device: DeviceCUDA})
	var ce *CUDAError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "cuda") || !strings.Contains(err.Error(), "make setup-gpu") {
		t.Errorf("cuda: err = %v, want a *CUDAError that says make setup-gpu installs a provider", err)
	}
	so, used, why, err = SessionOptions(Options{Device: DeviceCPU})
	if err != nil || used != DeviceCPU || why != "" {
		t.Errorf("cpu: %q %q %v", used, why, err)
	}
	so.Destroy()
}

// TestCUDAFallbackWithDriver: where an NVIDIA driver is present but the
// library cannot use CUDA, auto says so in one line.
func TestCUDAFallbackWithDriver(t *testing.T) {
	// Not parallel: it changes driverVersionFile, which the parallel tests
	// read once this function has returned.
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	if ok, _ := CUDAStatus(); ok {
		t.Skip("this ONNX Runtime has a working CUDA provider")
	}
	fake := filepath.Join(t.TempDir(), "version")
	if err := os.WriteFile(fake, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.00  (fake, for a test)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := driverVersionFile
	driverVersionFile = fake
	defer func() { driverVersionFile = old }()
	if v := DriverVersion(); !strings.Contains(v, "580.00") {
		t.Fatalf("DriverVersion() = %q", v)
	}
	so, used, why, err := SessionOptions(Options{Device: DeviceAuto, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	so.Destroy()
	if used != DeviceCPU || !strings.HasPrefix(why, "running on CPU: ") || !strings.Contains(why, "`tlearn doctor` explains") || strings.Contains(why, "\n") {
		t.Errorf("auto with a driver: used %q, why %q; want one line naming tlearn doctor", used, why)
	}
}
