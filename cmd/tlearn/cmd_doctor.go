package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/cpu"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "show the ONNX Runtime library, execution providers, CPU features and threads",
		Description: `Checks that tlearn can run here and says what it will use.

Example:
   tlearn doctor
   tlearn doctor --ort-lib /opt/onnxruntime-gpu/lib/libonnxruntime.so`,
		Flags:  withCommon(),
		Action: doctorAction,
	}
}

func doctorAction(c *cli.Context) error {
	w := c.App.Writer
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "tlearn %s, %s %s/%s\n", c.App.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	lib, err := initORT(c)
	if err != nil {
		fmt.Fprintf(w, "onnxruntime: NOT LOADED\n  %v\n", err)
		return err
	}
	fmt.Fprintf(w, "onnxruntime: %s\n  library: %s (found via %s)\n", ortlib.Version(), lib.Path, lib.Source)
	fmt.Fprintf(w, "execution providers:\n  CPU: available\n")
	rep, err := ortlib.CheckCUDA()
	if err != nil {
		return err
	}
	writeCUDA(w, rep, lib.Path)
	fmt.Fprintf(w, "cpu: %d cores, GOMAXPROCS %d, features: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuFeatures())
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	fmt.Fprintf(w, "int8 (models quantize): %s\n", int8Expectation(cpu.X86.HasAVX512VNNI, cpu.X86.HasAVXVNNI, cpu.X86.HasAVX2, runtime.GOARCH))
	fmt.Fprintf(w, "threads: %d for ONNX Runtime (--threads / $TLEARN_THREADS)\n", threads)
	fmt.Fprintf(w, "blas: %s\n", head.Backend())
	return nil
}

// writeCUDA prints what doctor found of CUDA: the provider file and its
// libraries, the driver, the GPUs, and the fix, one step a line.
func writeCUDA(w io.Writer, rep ortlib.CUDAReport, lib string) {
	if rep.Usable {
		fmt.Fprintf(w, "  CUDA: available (%s)\n", rep.Provider)
	} else {
		fmt.Fprintf(w, "  CUDA: not available\n")
	}
	if rep.Provider == "" {
		fmt.Fprintf(w, "    provider: not found (no %s beside %s)\n", ortlib.CUDAProviderLib, lib)
	} else {
		fmt.Fprintf(w, "    provider: %s\n", rep.Provider)
	}
	var missing []ortlib.Dependency
	if rep.Err != nil {
		missing = rep.Err.Missing
	}
	if rep.Provider != "" {
		if len(missing) == 0 {
			fmt.Fprintf(w, "    libraries: all %d found\n", len(rep.Deps))
		} else {
			fmt.Fprintf(w, "    libraries missing (as ldd would say \"not found\"):\n")
			for _, d := range missing {
				fmt.Fprintf(w, "      %s: %s\n", d.Name, ortlib.Provides(d.Name))
			}
		}
	}
	switch {
	case rep.Driver != "":
		fmt.Fprintf(w, "    NVIDIA driver: %s\n", rep.Driver)
	case rep.LibCUDA != "":
		fmt.Fprintf(w, "    NVIDIA driver: libcuda.so.1 at %s, no /proc/driver/nvidia/version (no GPU, or a container without the device)\n", rep.LibCUDA)
	default:
		fmt.Fprintf(w, "    NVIDIA driver: none (no /proc/driver/nvidia/version, no libcuda.so.1)\n")
	}
	for _, g := range rep.GPUs {
		fmt.Fprintf(w, "    GPU: %s\n", g)
	}
	for _, d := range rep.Devices {
		fmt.Fprintf(w, "    ONNX Runtime device: %s\n", d)
	}
	if rep.Err != nil {
		fmt.Fprintf(w, "    why: %s\n", rep.Err.Detail)
		for _, step := range cudaFix(rep) {
			fmt.Fprintf(w, "    fix: %s\n", step)
		}
	}
}

// cudaFix lists what would make CUDA load, first things first.
func cudaFix(rep ortlib.CUDAReport) []string {
	var steps []string
	if rep.Driver == "" && rep.LibCUDA == "" {
		steps = append(steps, "CUDA needs an NVIDIA GPU and its driver; without one, tlearn runs on CPU (--device cpu says so explicitly)")
	}
	if rep.Provider == "" {
		steps = append(steps, "make setup-gpu, then pass --ort-lib .ort-gpu/lib/libonnxruntime.so.1 (or TLEARN_ORT_LIB=...) from the checkout")
		return steps
	}
	var libs []string
	for _, d := range rep.Err.Missing {
		if d.Name != "libcuda.so.1" {
			libs = append(libs, d.Name)
		}
	}
	if len(libs) > 0 {
		steps = append(steps, "install "+strings.Join(libs, ", ")+" (the packages named above), then, if they are not in the ld.so cache, LD_LIBRARY_PATH=/path/to/their/lib:$LD_LIBRARY_PATH")
	}
	if rep.Err.NoDevice {
		steps = append(steps, "the provider loaded, but ONNX Runtime sees no NVIDIA GPU for it (the devices above): check that nvidia-smi lists the GPU and that /sys/class/drm has a card for it, where ONNX Runtime looks on Linux (the nvidia-drm kernel module makes it; a container must see it)")
	} else if rep.Err.PluginOnly {
		steps = append(steps, "this core library (ONNX Runtime 1.29, without the CUDA bridge) takes CUDA as a plugin provider: once the provider loads, tlearn attaches it on the first NVIDIA GPU that ONNX Runtime lists")
	}
	return steps
}

func cpuFeatures() string {
	var f []string
	for _, x := range []struct {
		name string
		ok   bool
	}{
		{"sse4.2", cpu.X86.HasSSE42}, {"avx", cpu.X86.HasAVX}, {"avx2", cpu.X86.HasAVX2},
		{"fma", cpu.X86.HasFMA}, {"avx512f", cpu.X86.HasAVX512F}, {"avx512bf16", cpu.X86.HasAVX512BF16},
		{"avx512vnni", cpu.X86.HasAVX512VNNI}, {"avxvnni", cpu.X86.HasAVXVNNI},
		{"asimd", cpu.ARM64.HasASIMD},
	} {
		if x.ok {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "baseline"
	}
	return strings.Join(f, " ")
}

// int8Expectation says what an int8 extractor (models quantize) should
// give on a CPU with these features, from the measurements behind issue
// 13 (BENCHMARKS.md, "int8 extraction"): ONNX Runtime's QLinearConv runs
// u8×s8 dot products in one VNNI instruction; without VNNI, AVX2 needs
// three (vpmaddubsw, vpmaddwd, vpaddd) and its 16-bit intermediate sums
// can saturate.
func int8Expectation(avx512vnni, avxvnni, avx2 bool, arch string) string {
	switch {
	case avx512vnni:
		return "AVX-512 VNNI: expect about 3-3.8× float32 extraction with the same features (cosine ~0.9999; measured on AMD Zen 5)"
	case avxvnni:
		return "AVX-VNNI (256-bit): expect a clear gain over float32, less than AVX-512 VNNI's 3×; not measured by tlearn yet"
	case avx2:
		return "no VNNI (AVX2 only): int8 may gain little or nothing over float32; measure before relying on it (make bench)"
	case arch == "arm64":
		return "arm64: ONNX Runtime's int8 kernels use the dot-product instructions where present; not measured by tlearn"
	}
	return "no int8 dot-product instructions found: expect no gain over float32"
}
