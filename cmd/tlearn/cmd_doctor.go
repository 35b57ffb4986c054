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
