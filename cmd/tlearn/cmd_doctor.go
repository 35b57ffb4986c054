package main

import (
	"fmt"
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
	ok, why := ortlib.CUDAStatus()
	fmt.Fprintf(w, "execution providers:\n  CPU: available\n")
	if ok {
		fmt.Fprintf(w, "  CUDA: available\n")
	} else {
		fmt.Fprintf(w, "  CUDA: not available: %s\n", why)
	}
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
